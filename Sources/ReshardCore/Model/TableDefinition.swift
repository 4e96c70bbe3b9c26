/// A validated table name, `[a-z][a-z0-9_]{0,62}`: the only form in which a table name reaches SQL.
public struct TableName: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The validated name.
    public let rawValue: String

    /// Validates `rawValue`; `nil` when it is not a legal table name.
    public init?(_ rawValue: String) {
        guard Identifier.matches(rawValue, maxLength: 63) else { return nil }
        self.rawValue = rawValue
    }

    /// A name built from legal parts, which the caller guarantees follows the rule.
    init(validated rawValue: String) {
        self.rawValue = rawValue
    }

    /// The name itself.
    public var description: String { rawValue }

    /// Orders by name.
    public static func < (lhs: TableName, rhs: TableName) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Decodes and validates.
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let name = TableName(raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid table name \(raw)"))
        }
        self = name
    }

    /// Encodes as a string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A table: its name, the JSON field holding the primary key and the one holding the shard key,
/// and its layout: where its rows are stored and how reads by primary key find them. When the
/// keys differ, rows sharing a shard key live together on one shard.
///
/// A table's layout changes only through a `change_shard_key` migration, which builds the next
/// layout beside the live one (a ghost table of rows placed by the new key, and a primary-key
/// lookup) and switches to it atomically; each layout has a generation and storage of its own.
public struct TableDefinition: Hashable, Sendable, Codable {
    /// The table's name.
    public let name: TableName
    /// The JSON field of the primary key (the `{pk}` of the row URL).
    public let primaryKey: String
    /// The JSON field whose value is hashed to place the row.
    public let shardKey: String
    /// The layout's generation: 1 when the table is created, one more at each shard-key change.
    public let layoutGeneration: UInt64
    /// The table every shard stores this layout's rows in: the table's own name at generation 1.
    public let storage: TableName
    /// The primary-key lookup of a layout placed by another field than the primary key that
    /// came from a shard-key change (`PrimaryKeyLookup`): reads and writes by primary key find
    /// the row's shard key there. Nil when rows are placed by their primary key, or when the
    /// table was created placed by another field (its clients then pass `?shard_key=`).
    public let lookup: TableName?

    /// A table at its first layout; field names follow the table-name rule.
    public init?(name: TableName, primaryKey: String, shardKey: String) {
        guard Self.isValidField(primaryKey), Self.isValidField(shardKey) else { return nil }
        self.name = name
        self.primaryKey = primaryKey
        self.shardKey = shardKey
        self.layoutGeneration = 1
        self.storage = name
        self.lookup = nil
    }

    private init(name: TableName, primaryKey: String, shardKey: String, layoutGeneration: UInt64, storage: TableName, lookup: TableName?) {
        self.name = name
        self.primaryKey = primaryKey
        self.shardKey = shardKey
        self.layoutGeneration = layoutGeneration
        self.storage = storage
        self.lookup = lookup
    }

    /// The next layout, placed by `field`: new storage (and a lookup unless `field` is the
    /// primary key), one generation on. Nil when `field` is not a legal field name.
    public func relaid(by field: String) -> TableDefinition? {
        guard Self.isValidField(field), layoutGeneration < UInt64.max else { return nil }
        let generation = layoutGeneration + 1
        return TableDefinition(
            name: name, primaryKey: primaryKey, shardKey: field, layoutGeneration: generation,
            storage: TableName.layoutStorage(of: name, generation: generation, role: .rows),
            lookup: field == primaryKey ? nil : TableName.layoutStorage(of: name, generation: generation, role: .lookup))
    }

    /// This layout again at `generation`, its storage unchanged: what a rollback after the switch
    /// of a shard-key change publishes, since a table's layout generation only grows.
    public func restored(at generation: UInt64) -> TableDefinition {
        TableDefinition(
            name: name, primaryKey: primaryKey, shardKey: shardKey, layoutGeneration: max(generation, 1), storage: storage, lookup: lookup)
    }

    /// Whether rows are placed by their primary key.
    public var isShardedByPrimaryKey: Bool { primaryKey == shardKey }

    /// The tables this layout stores on every shard: its rows, and its lookup if it has one.
    public var storages: [TableName] { [storage] + (lookup.map { [$0] } ?? []) }

    /// Field names follow the table-name rule, `[a-z][a-z0-9_]{0,62}`.
    public static func isValidField(_ name: String) -> Bool {
        Identifier.matches(name, maxLength: 63)
    }

    private enum CodingKeys: String, CodingKey {
        case name
        case primaryKey = "primary_key"
        case shardKey = "shard_key"
        case layoutGeneration = "layout_generation"
        case storage
        case lookup
    }

    /// Decodes and validates the field names; a definition saved before layouts existed is at
    /// its first layout.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(TableName.self, forKey: .name)
        let primaryKey = try container.decode(String.self, forKey: .primaryKey)
        let shardKey = try container.decode(String.self, forKey: .shardKey)
        guard Self.isValidField(primaryKey), Self.isValidField(shardKey) else {
            throw DecodingError.dataCorruptedError(forKey: .primaryKey, in: container, debugDescription: "invalid field name")
        }
        let generation = try container.decodeIfPresent(UInt64.self, forKey: .layoutGeneration) ?? 1
        guard generation >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .layoutGeneration, in: container, debugDescription: "layout generation 0")
        }
        self.init(
            name: name, primaryKey: primaryKey, shardKey: shardKey, layoutGeneration: generation,
            storage: try container.decodeIfPresent(TableName.self, forKey: .storage) ?? name,
            lookup: try container.decodeIfPresent(TableName.self, forKey: .lookup))
    }

    /// Encodes every field.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(primaryKey, forKey: .primaryKey)
        try container.encode(shardKey, forKey: .shardKey)
        try container.encode(layoutGeneration, forKey: .layoutGeneration)
        try container.encode(storage, forKey: .storage)
        try container.encodeIfPresent(lookup, forKey: .lookup)
    }
}

extension TableName {
    /// What a layout's storage table holds.
    public enum LayoutRole: String, Sendable {
        /// The rows, placed by the layout's shard key.
        case rows = "g"
        /// The primary-key lookup, placed by primary key.
        case lookup = "k"
    }

    /// Whether a client may name a table so: `__` is reserved for the storage of later layouts,
    /// so no table can be created under a name a layout uses.
    public var isClientName: Bool { !rawValue.contains("__") }

    /// The storage of layout `generation` (at least 2) of table `name`: `name__g2`, `name__k2`;
    /// a name too long for that keeps its first 20 characters and a digest of the rest, so two
    /// long names never share storage.
    public static func layoutStorage(of name: TableName, generation: UInt64, role: LayoutRole) -> TableName {
        let suffix = "__\(role.rawValue)\(generation)"
        var stem = name.rawValue
        if stem.utf8.count + suffix.utf8.count > 63 {
            let digest = String(XXHash64.hash(Array(name.rawValue.utf8)), radix: 16)
            stem = String(stem.prefix(20)) + "_" + String(repeating: "0", count: 16 - digest.count) + digest
        }
        // A legal name's prefix, `_`, hex digits and the suffix: [a-z][a-z0-9_]*, at most 60
        // characters (20 + 1 + 16 + 23).
        return TableName(validated: stem + suffix)
    }
}
