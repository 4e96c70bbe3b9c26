/// Why a map's layout text was refused.
public struct ShardMapLayoutError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A sentence naming the first problem and the byte where it was found.
    public let description: String
}

/// The compact text of a map's ranges, `<start hex>=<shard>,…`: ranges are contiguous, so their
/// starts say everything. It is what the metadata store keeps and what a router reads when it
/// follows a new generation, and a ring of 1,000 shards has 256,000 ranges (5.5 MB): both
/// directions work on bytes, without a string or a shard-name check per range, because a map
/// is published while writes are held.
extension ShardMap {
    /// The layout as UTF-8 bytes: lowercase hex starts without leading zeros, `=`, the shard.
    public var layoutBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(assignments.count * 24)
        for (index, assignment) in assignments.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.appendHex(assignment.range.start, to: &bytes)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: assignment.shard.rawValue.utf8)
        }
        return bytes
    }

    /// Parses and validates layout text: starts strictly increasing from 0, every shard a legal
    /// name. Adjacent ranges of one shard are merged, as the assignment initialiser does.
    public init(generation: UInt64, layout: [UInt8]) throws(ShardMapLayoutError) {
        var assignments: [RangeAssignment] = []
        var names = ShardNames()
        var pendingStart: UInt64?
        var pendingShard: ShardID?
        var offset = 0
        var byte = layout.first

        func fail(_ problem: String) -> ShardMapLayoutError {
            ShardMapLayoutError(description: "layout byte \(offset): \(problem)")
        }

        while true {
            // A start in hex, up to `=`.
            var start: UInt64 = 0
            var digits = 0
            while let current = byte, current != UInt8(ascii: "=") {
                guard let value = HexDigit.value(current) else { throw fail("\(Self.shown(current)) in a range start") }
                guard start >> 60 == 0 else { throw fail("a range start above 2^64") }
                start = start << 4 | UInt64(value)
                digits += 1
                offset += 1
                byte = offset < layout.count ? layout[offset] : nil
            }
            guard byte != nil else { throw fail(digits == 0 ? "an empty entry" : "an entry without '='") }
            guard digits > 0 else { throw fail("an empty range start") }
            offset += 1
            byte = offset < layout.count ? layout[offset] : nil
            // The shard, up to `,` or the end.
            names.begin()
            while let current = byte, current != UInt8(ascii: ",") {
                guard names.add(current) else { throw fail("a shard name longer than \(ShardNames.capacity) bytes") }
                offset += 1
                byte = offset < layout.count ? layout[offset] : nil
            }
            guard let shard = names.finish() else { throw fail("an invalid shard name") }

            if let previousStart = pendingStart, let previousShard = pendingShard {
                guard start > previousStart else { throw fail("range starts must increase") }
                if shard != previousShard {
                    assignments.append(RangeAssignment(range: HashRange(start: previousStart, last: start - 1), shard: previousShard))
                    pendingStart = start
                    pendingShard = shard
                }
            } else {
                guard start == 0 else { throw fail("the first range starts at \(HashRange.hex(start)), not 0") }
                pendingStart = start
                pendingShard = shard
            }
            guard byte != nil else { break }
            offset += 1
            byte = offset < layout.count ? layout[offset] : nil
        }
        guard let lastStart = pendingStart, let lastShard = pendingShard else { throw fail("an empty layout") }
        assignments.append(RangeAssignment(range: HashRange(start: lastStart, last: .max), shard: lastShard))
        self.init(generation: generation, validated: assignments)
    }

    private static func appendHex(_ value: UInt64, to bytes: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        let significant = value == 0 ? 1 : (67 - value.leadingZeroBitCount) / 4
        for index in stride(from: significant - 1, through: 0, by: -1) {
            let nibble = Int((value >> (UInt64(index) * 4)) & 0xF)
            bytes.append(digits.utf8Start[nibble])
        }
    }

    private static func shown(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }
}

/// Shard names met while parsing a layout, kept by their bytes in fixed inline storage, so that
/// a name seen before costs a hash lookup instead of a string and a validation.
private struct ShardNames {
    /// The longest legal shard name.
    static let capacity = 32

    private struct Key: Hashable {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var count = 0

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.count == rhs.count && lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
                && lhs.words.3 == rhs.words.3
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(count)
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
        }
    }

    private var known: [Key: ShardID] = [:]
    private var key = Key()

    mutating func begin() { key = Key() }

    /// Adds a byte of the name; false when the name is already at its longest.
    mutating func add(_ byte: UInt8) -> Bool {
        guard key.count < Self.capacity else { return false }
        let shift = UInt64(key.count % 8) * 8
        switch key.count / 8 {
        case 0: key.words.0 |= UInt64(byte) << shift
        case 1: key.words.1 |= UInt64(byte) << shift
        case 2: key.words.2 |= UInt64(byte) << shift
        default: key.words.3 |= UInt64(byte) << shift
        }
        key.count += 1
        return true
    }

    /// The shard the added bytes name; nil when they are not a legal shard name.
    mutating func finish() -> ShardID? {
        if let id = known[key] { return id }
        var bytes: [UInt8] = []
        for index in 0..<key.count {
            let word =
                switch index / 8 {
                case 0: key.words.0
                case 1: key.words.1
                case 2: key.words.2
                default: key.words.3
                }
            bytes.append(UInt8(truncatingIfNeeded: word >> (UInt64(index % 8) * 8)))
        }
        // Validated as UTF-8 first: a name must never be repaired into a legal one.
        guard let text = String(validating: bytes, as: UTF8.self), let id = ShardID(text) else { return nil }
        known[key] = id
        return id
    }
}

/// One hexadecimal digit's value, either case; nil for any other byte.
public enum HexDigit {
    public static func value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
