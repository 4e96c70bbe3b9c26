/// The one rule for primary keys and shard keys, on every route and every backend: 1 to
/// `maxBytes` bytes of UTF-8 with no control character.
///
/// Control characters are refused rather than stored because no backend keeps them all
/// faithfully: SQLite's C string binding ends a key at its first NUL (so `victim\0x` overwrote
/// `victim` while its hash placed a copy on another shard) and PostgreSQL's `text` rejects NUL
/// outright. Refusing the whole Unicode `Cc` class (C0, DEL and C1) keeps keys printable in
/// logs, status pages and shell commands too.
public enum RowKey {
    /// The longest key, in UTF-8 bytes.
    public static let maxBytes = 512

    /// The longest key a store keeps, in UTF-8 bytes: a layout with a primary-key lookup stores
    /// each row under its shard key and primary key together (`LookupEntry.slot`), a length
    /// prefix and two keys of at most `maxBytes` each. Clients never send keys this long; the
    /// router refuses anything over `maxBytes` first.
    public static let maxStoredBytes = 2 * maxBytes + 8

    /// Why a key is refused.
    public enum Problem: Sendable, Hashable, CustomStringConvertible {
        /// The key is the empty string.
        case empty
        /// The key's UTF-8 form is longer than `limit` bytes.
        case tooLong(bytes: Int, limit: Int)
        /// The key holds a control character at this UTF-8 byte offset.
        case controlCharacter(Unicode.Scalar, offset: Int)

        /// A sentence naming the problem.
        public var description: String {
            switch self {
            case .empty: "must not be empty"
            case .tooLong(let bytes, let limit): "is \(bytes) bytes long; the limit is \(limit) bytes of UTF-8"
            case .controlCharacter(let scalar, let offset):
                "holds the control character U+\(Self.hex(scalar.value)) at byte \(offset); keys must be printable"
            }
        }

        private static func hex(_ value: UInt32) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
    }

    /// What is wrong with `key`, or `nil` when it is a legal key.
    public static func problem(_ key: String, limit: Int = maxBytes) -> Problem? {
        let bytes = key.utf8.count
        if bytes == 0 { return .empty }
        if bytes > limit { return .tooLong(bytes: bytes, limit: limit) }
        var offset = 0
        for scalar in key.unicodeScalars {
            if isControl(scalar) { return .controlCharacter(scalar, offset: offset) }
            offset += UTF8.width(scalar)
        }
        return nil
    }

    /// Whether `key` is a legal key.
    public static func isValid(_ key: String) -> Bool { problem(key) == nil }

    /// Unicode's `Cc` class: U+0000–U+001F, U+007F and U+0080–U+009F.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
