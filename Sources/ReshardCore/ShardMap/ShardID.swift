/// The name of a shard: `[a-z][a-z0-9_-]{0,31}`, safe in file names, metric labels and SQL
/// literals because nothing else gets through `init`.
public struct ShardID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The validated name.
    public let rawValue: String

    /// Validates `rawValue`; `nil` when it is not a legal shard name.
    public init?(_ rawValue: String) {
        guard Identifier.matches(rawValue, maxLength: 32, extra: "_-") else { return nil }
        self.rawValue = rawValue
    }

    /// The name itself.
    public var description: String { rawValue }

    /// Orders shards by name, so listings and tie-breaks are stable.
    public static func < (lhs: ShardID, rhs: ShardID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Decodes and validates a shard name.
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let id = ShardID(raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid shard id \(raw)"))
        }
        self = id
    }

    /// Encodes the shard name as a string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The one rule for every name that may reach SQL or a file path: a lowercase ASCII letter,
/// then lowercase letters, digits and the allowed extra characters.
public enum Identifier {
    /// Whether `name` is a legal identifier of at most `maxLength` characters.
    public static func matches(_ name: String, maxLength: Int, extra: String = "_") -> Bool {
        let utf8 = Array(name.utf8)
        let allowed = Set(extra.utf8)
        guard let first = utf8.first, utf8.count <= maxLength, isLower(first) else { return false }
        return utf8.dropFirst().allSatisfy { isLower($0) || isDigit($0) || allowed.contains($0) }
    }

    private static func isLower(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
}
