/// A validated table name, `[a-z][a-z0-9_]{0,62}`: the only form in which a table name reaches SQL.
public struct TableName: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The validated name.
    public let rawValue: String

    /// Validates `rawValue`; `nil` when it is not a legal table name.
    public init?(_ rawValue: String) {
        guard Identifier.matches(rawValue, maxLength: 63) else { return nil }
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

/// A table: its name, the JSON field holding the primary key and the one holding the shard key.
/// When they differ, rows sharing a shard key live together on one shard.
public struct TableDefinition: Hashable, Sendable, Codable {
    /// The table's name.
    public let name: TableName
    /// The JSON field of the primary key (the `{pk}` of the row URL).
    public let primaryKey: String
    /// The JSON field whose value is hashed to place the row.
    public let shardKey: String

    /// A table; field names follow the table-name rule.
    public init?(name: TableName, primaryKey: String, shardKey: String) {
        guard Self.isValidField(primaryKey), Self.isValidField(shardKey) else { return nil }
        self.name = name
        self.primaryKey = primaryKey
        self.shardKey = shardKey
    }

    /// Whether rows are placed by their primary key.
    public var isShardedByPrimaryKey: Bool { primaryKey == shardKey }

    /// Field names follow the table-name rule, `[a-z][a-z0-9_]{0,62}`.
    public static func isValidField(_ name: String) -> Bool {
        Identifier.matches(name, maxLength: 63)
    }

    private enum CodingKeys: String, CodingKey {
        case name
        case primaryKey = "primary_key"
        case shardKey = "shard_key"
    }

    /// Decodes and validates the field names.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(TableName.self, forKey: .name)
        let primaryKey = try container.decode(String.self, forKey: .primaryKey)
        let shardKey = try container.decode(String.self, forKey: .shardKey)
        guard let table = TableDefinition(name: name, primaryKey: primaryKey, shardKey: shardKey) else {
            throw DecodingError.dataCorruptedError(forKey: .primaryKey, in: container, debugDescription: "invalid field name")
        }
        self = table
    }
}
