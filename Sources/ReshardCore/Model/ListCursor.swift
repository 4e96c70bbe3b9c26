/// Where a shard-key listing goes on: after primary key `after` of the rows sharing `shardKey`.
///
/// Keyset pagination: a page lists the live rows whose primary key is above the cursor's, in
/// byte order, so each row that lives through the whole listing is listed exactly once,
/// whatever is written meanwhile, and whichever shard owns the key from page to page (a
/// migration changes where the rows are, never their order). A row written or deleted during
/// the listing appears at most once.
///
/// Clients see an opaque token, base64url of a version byte, the shard key's length and the two
/// keys, so that a token cannot be mistaken for another listing's.
public struct ListCursor: Sendable, Hashable {
    /// The shard key the listing is of.
    public let shardKey: String
    /// The last primary key listed.
    public let after: String

    /// The longest token accepted: two client keys at their longest, with room to spare.
    public static let maxTokenLength = 2_048

    /// A cursor after `after` in the listing of `shardKey`.
    public init(shardKey: String, after: String) {
        self.shardKey = shardKey
        self.after = after
    }

    /// The opaque token a client sends back.
    public var token: String {
        var bytes: [UInt8] = [1]
        var length = shardKey.utf8.count
        // LEB128, so that any length fits without a fixed width.
        repeat {
            let low = UInt8(length & 0x7F)
            length >>= 7
            bytes.append(length == 0 ? low : low | 0x80)
        } while length != 0
        bytes += shardKey.utf8
        bytes += after.utf8
        return Base64URL.encode(bytes)
    }

    /// The cursor a token stands for; nil unless it is one this version wrote, with two keys
    /// that `RowKey` accepts.
    public init?(token: String) {
        guard token.utf8.count <= Self.maxTokenLength, let bytes = Base64URL.decode(token), bytes.first == 1 else { return nil }
        var index = 1
        var length = 0
        var shift = 0
        while true {
            guard index < bytes.count, shift < 28 else { return nil }
            let byte = bytes[index]
            index += 1
            length |= Int(byte & 0x7F) << shift
            shift += 7
            if byte & 0x80 == 0 { break }
        }
        guard length <= bytes.count - index,
            let shardKey = String(validating: bytes[index..<index + length], as: UTF8.self),
            let after = String(validating: bytes[(index + length)...], as: UTF8.self),
            RowKey.problem(shardKey, limit: RowKey.maxBytes) == nil, RowKey.problem(after, limit: RowKey.maxBytes) == nil,
            // Only the token `token` writes: no second spelling of one cursor.
            ListCursor(shardKey: shardKey, after: after).token == token
        else { return nil }
        self.init(shardKey: shardKey, after: after)
    }
}

/// RFC 4648 §5 base64url without padding.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value = 0
            for (offset, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * offset) }
            for position in 0...chunk.count { out.append(alphabet[(value >> (18 - 6 * position)) & 0x3F]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [Int] = []
        values.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            guard let value = alphabet.firstIndex(of: byte) else { return nil }
            values.append(value)
        }
        // A lone sixth of a byte is not an encoding of anything.
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var value = 0
            for (offset, sextet) in chunk.enumerated() { value |= sextet << (18 - 6 * offset) }
            for position in 0..<(chunk.count - 1) { out.append(UInt8((value >> (16 - 8 * position)) & 0xFF)) }
            index += 4
        }
        return out
    }
}
