/// A half-open interval `[start, end)` of the 64-bit hash space.
///
/// It is stored as the closed interval `[start, last]` because the end of the whole space,
/// 2^64, does not fit in a `UInt64`; `end` is only a rendering.
public struct HashRange: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The first hash in the range.
    public let start: UInt64
    /// The last hash in the range (inclusive).
    public let last: UInt64

    /// The whole hash space.
    public static let full = HashRange(start: 0, last: .max)

    /// A range from `start` through `last`; `start <= last` is the caller's duty.
    public init(start: UInt64, last: UInt64) {
        precondition(start <= last, "empty hash range \(start)...\(last)")
        self.start = start
        self.last = last
    }

    /// The half-open range `[start, end)`; `nil` when it would be empty.
    public init?(start: UInt64, end: UInt64) {
        guard end > start else { return nil }
        self.init(start: start, last: end - 1)
    }

    /// Whether `hash` lies in the range.
    public func contains(_ hash: UInt64) -> Bool { hash >= start && hash <= last }

    /// Whether the two ranges share a hash.
    public func overlaps(_ other: HashRange) -> Bool { start <= other.last && other.start <= last }

    /// The shared part of the two ranges, if any.
    public func intersection(_ other: HashRange) -> HashRange? {
        guard overlaps(other) else { return nil }
        return HashRange(start: max(start, other.start), last: min(last, other.last))
    }

    /// How many hashes the range holds, as a fraction of the whole space.
    public var fraction: Double { (Double(last - start) + 1) / 18_446_744_073_709_551_616.0 }

    /// The exclusive end as 17 hex digits at most: `0x10000000000000000` for the top of the space.
    public var endHex: String {
        last == .max ? "0x10000000000000000" : Self.hex(last + 1)
    }

    /// The start as `0x` and 16 hex digits.
    public var startHex: String { Self.hex(start) }

    /// `[0x…, 0x…)`.
    public var description: String { "[\(startHex), \(endHex))" }

    /// Orders ranges by their start.
    public static func < (lhs: HashRange, rhs: HashRange) -> Bool {
        (lhs.start, lhs.last) < (rhs.start, rhs.last)
    }

    /// `0x` followed by 16 lowercase hex digits.
    public static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The range `[start, end)` written as `0x…` hex or decimal bounds, the end exclusive and at
    /// most the top of the space (`0x10000000000000000`); nil when a bound is malformed or the
    /// range is empty.
    public init?(startText: String, endText: String) {
        guard let start = Self.parseBound(startText), !start.isTop, let end = Self.parseBound(endText) else { return nil }
        if end.isTop {
            self.init(start: start.value, last: .max)
        } else {
            self.init(start: start.value, end: end.value)
        }
    }

    /// Parses `0x…` hex or decimal digits only (no sign, no spaces); the top of the space
    /// (`0x10000000000000000`) parses as `isTop`.
    static func parseBound(_ text: String) -> (value: UInt64, isTop: Bool)? {
        if text.lowercased() == "0x10000000000000000" || text == "18446744073709551616" {
            return (0, true)
        }
        let isHex = text.hasPrefix("0x") || text.hasPrefix("0X")
        let digits = isHex ? text.dropFirst(2) : text[...]
        guard !digits.isEmpty, digits.allSatisfy({ isHex ? $0.isHexDigit : $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits, radix: isHex ? 16 : 10).map { ($0, false) }
    }
}

extension HashRange: Codable {
    private enum CodingKeys: String, CodingKey { case start, end }

    /// Decodes `{"start":"0x…","end":"0x…"}` with an exclusive end.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let startText = try container.decode(String.self, forKey: .start)
        let endText = try container.decode(String.self, forKey: .end)
        guard let range = HashRange(startText: startText, endText: endText) else {
            throw DecodingError.dataCorruptedError(forKey: .start, in: container, debugDescription: "bad or empty hash range")
        }
        self = range
    }

    /// Encodes as `{"start":"0x…","end":"0x…"}` with an exclusive end.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(startHex, forKey: .start)
        try container.encode(endHex, forKey: .end)
    }
}
