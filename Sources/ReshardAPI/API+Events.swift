extension API {
    /// One event of `GET /v1/events` (the `data` of an SSE message, and a webhook's body): a
    /// shard map published (`shard_map`: a cutover, a rollback, the first map), a table's layout
    /// switched (`layout`: a shard-key change or its rollback), or a migration's old copies
    /// cleaned up (`cleanup`). A cache drops what it keeps of the `moves` ranges (every table for
    /// a map, `table` for a layout, whose every row moved) tagged with an older generation.
    public struct ClusterEvent: Codable, Sendable, Hashable {
        /// The event's position in the cluster's event log (the SSE `id`): 1, 2, …, never reused.
        public var position: UInt64
        /// When the metadata store recorded it, milliseconds since 1970 (its clock).
        public var atMs: UInt64
        public var kind: String
        /// The map's generation (`shard_map`, `cleanup`), or the table's layout generation (`layout`).
        public var generation: UInt64
        public var previousGeneration: UInt64?
        public var table: String?
        /// The ranges whose owner changed, old owner to new (empty for the first map and a layout).
        public var moves: [EventMove]
        public var migration: String?

        enum CodingKeys: String, CodingKey {
            case position
            case atMs = "at_ms"
            case kind, generation
            case previousGeneration = "previous_generation"
            case table, moves, migration
        }

        public init(
            position: UInt64, atMs: UInt64, kind: String, generation: UInt64, previousGeneration: UInt64?, table: String?,
            moves: [EventMove], migration: String?
        ) {
            self.position = position
            self.atMs = atMs
            self.kind = kind
            self.generation = generation
            self.previousGeneration = previousGeneration
            self.table = table
            self.moves = moves
            self.migration = migration
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(position, forKey: .position)
            try container.encode(atMs, forKey: .atMs)
            try container.encode(kind, forKey: .kind)
            try container.encode(generation, forKey: .generation)
            try container.encode(previousGeneration, forKey: .previousGeneration)
            try container.encode(table, forKey: .table)
            try container.encode(moves, forKey: .moves)
            try container.encode(migration, forKey: .migration)
        }
    }

    /// A range that changed owner: `[start, end)`, from `from` to `to`.
    public struct EventMove: Codable, Sendable, Hashable {
        public var start: String
        public var end: String
        public var from: String
        public var to: String

        public init(start: String, end: String, from: String, to: String) {
            self.start = start
            self.end = end
            self.from = from
            self.to = to
        }
    }

    /// Where a stream starts (`hello`: the log's last position and the map in force) or starts
    /// over (`reset`: the position asked for is no longer kept, or was never reached; drop every
    /// cached entry and go on from `position`).
    public struct EventStreamStart: Codable, Sendable, Hashable {
        /// The last position now; the stream goes on after it.
        public var position: UInt64
        /// The oldest position still kept (0 while the log is empty).
        public var oldest: UInt64
        /// The shard map generation this router uses now.
        public var generation: UInt64

        public init(position: UInt64, oldest: UInt64, generation: UInt64) {
            self.position = position
            self.oldest = oldest
            self.generation = generation
        }
    }
}
