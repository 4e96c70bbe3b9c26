extension API {
    /// `POST /v1/tables`.
    public struct CreateTable: Codable, Sendable, Hashable {
        /// The table's name, `[a-z][a-z0-9_]{0,62}`.
        public var name: String
        /// The JSON field holding the primary key.
        public var primaryKey: String
        /// The JSON field whose value places the row; nil: the primary key.
        public var shardKey: String?

        enum CodingKeys: String, CodingKey {
            case name
            case primaryKey = "primary_key"
            case shardKey = "shard_key"
        }

        /// A table request.
        public init(name: String, primaryKey: String, shardKey: String? = nil) {
            self.name = name
            self.primaryKey = primaryKey
            self.shardKey = shardKey
        }
    }

    /// A table: `POST /v1/tables` answers it, `GET /v1/tables` and `GET /v1/cluster` list them.
    public struct Table: Codable, Sendable, Hashable {
        /// The table's name.
        public var name: String
        /// The JSON field holding the primary key.
        public var primaryKey: String
        /// The JSON field whose value places the row (the primary key's unless told otherwise).
        public var shardKey: String

        enum CodingKeys: String, CodingKey {
            case name
            case primaryKey = "primary_key"
            case shardKey = "shard_key"
        }

        /// A table.
        public init(name: String, primaryKey: String, shardKey: String) {
            self.name = name
            self.primaryKey = primaryKey
            self.shardKey = shardKey
        }
    }

    /// `GET /v1/tables`: every table, in name order.
    public struct TableList: Codable, Sendable, Hashable {
        /// The tables.
        public var tables: [Table]

        enum CodingKeys: String, CodingKey {
            case tables
        }

        /// A list of tables.
        public init(tables: [Table]) {
            self.tables = tables
        }
    }

    /// `POST /v1/shards`.
    public struct CreateShard: Codable, Sendable, Hashable {
        /// The shard's name, `[a-z][a-z0-9_-]{0,31}`.
        public var id: String
        /// A PostgreSQL database, `postgres://USER@HOST[:PORT]/DATABASE` (no password); nil: a
        /// SQLite file in the server's data folder.
        public var url: String?

        enum CodingKeys: String, CodingKey {
            case id, url
        }

        /// A shard request.
        public init(id: String, url: String? = nil) {
            self.id = id
            self.url = url
        }
    }

    /// `POST /v1/shards`: the shard is registered and owns no range yet.
    public struct ShardCreated: Codable, Sendable, Hashable {
        /// The shard's name.
        public var id: String
        /// `sqlite` or `postgres`.
        public var backend: String
        /// The SQLite file or the PostgreSQL URL (never a password).
        public var address: String
        /// Always 0: a new shard owns no range.
        public var ranges: Int

        enum CodingKeys: String, CodingKey {
            case id, backend, address, ranges
        }

        /// A newly registered shard.
        public init(id: String, backend: String, address: String) {
            self.id = id
            self.backend = backend
            self.address = address
            ranges = 0
        }
    }

    /// One registered shard with its share of the current map and its live rows.
    public struct ShardInfo: Codable, Sendable, Hashable {
        /// The shard's name.
        public var id: String
        /// `sqlite` or `postgres`.
        public var backend: String
        /// The SQLite file or the PostgreSQL URL (never a password).
        public var address: String
        /// Ranges of the current map it owns.
        public var ranges: Int
        /// Its share of the hash space, 0…1.
        public var fraction: Double
        /// Live rows over every table.
        public var rows: Int
        /// How the shard captures changes for migrations (`triggers`, `logical decoding …`); nil
        /// when the shard could not say.
        public var changeCapture: String?

        enum CodingKeys: String, CodingKey {
            case id, backend, address, ranges, fraction, rows
            case changeCapture = "change_capture"
        }

        /// A shard's figures.
        public init(
            id: String, backend: String, address: String, ranges: Int, fraction: Double, rows: Int, changeCapture: String? = nil
        ) {
            self.id = id
            self.backend = backend
            self.address = address
            self.ranges = ranges
            self.fraction = fraction
            self.rows = rows
            self.changeCapture = changeCapture
        }

        /// Writes every member, `null` for a change capture the shard could not name.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(backend, forKey: .backend)
            try container.encode(address, forKey: .address)
            try container.encode(ranges, forKey: .ranges)
            try container.encode(fraction, forKey: .fraction)
            try container.encode(rows, forKey: .rows)
            try container.encodeNullable(changeCapture, forKey: .changeCapture)
        }
    }

    /// `GET /v1/shards`: every registered shard, by name.
    public struct ShardList: Codable, Sendable, Hashable {
        /// The shards.
        public var shards: [ShardInfo]

        enum CodingKeys: String, CodingKey {
            case shards
        }

        /// A list of shards.
        public init(shards: [ShardInfo]) {
            self.shards = shards
        }
    }

    /// One range of the shard map and its owner.
    public struct RangeAssignment: Codable, Sendable, Hashable {
        /// The inclusive start, `0x` and 16 lowercase hex digits.
        public var start: String
        /// The exclusive end; `0x10000000000000000` is the end of the space.
        public var end: String
        /// The owning shard.
        public var shard: String

        enum CodingKeys: String, CodingKey {
            case start, end, shard
        }

        /// A range and its owner.
        public init(start: String, end: String, shard: String) {
            self.start = start
            self.end = end
            self.shard = shard
        }
    }

    /// `GET /v1/cluster`: the shard map in force, the shards and the tables, as one router sees them.
    public struct Cluster: Codable, Sendable, Hashable {
        /// The shard map's generation.
        public var generation: UInt64
        /// Every registered shard, by name, including ones that own no range yet.
        public var shards: [ShardInfo]
        /// Every table, by name.
        public var tables: [Table]
        /// Every range of the map, sorted; they tile the hash space exactly once.
        public var ranges: [RangeAssignment]

        enum CodingKeys: String, CodingKey {
            case generation, shards, tables, ranges
        }

        /// A cluster view.
        public init(generation: UInt64, shards: [ShardInfo], tables: [Table], ranges: [RangeAssignment]) {
            self.generation = generation
            self.shards = shards
            self.tables = tables
            self.ranges = ranges
        }
    }
}
