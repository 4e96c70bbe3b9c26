/// One hash range and the shard that owns it.
public struct RangeAssignment: Hashable, Sendable, Codable {
    /// The owned range.
    public let range: HashRange
    /// Its owner.
    public let shard: ShardID

    /// Pairs a range with its owner.
    public init(range: HashRange, shard: ShardID) {
        self.range = range
        self.shard = shard
    }
}

/// Why a list of assignments is not a shard map.
public struct ShardMapError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable { case empty, gap, overlap, notCoveringStart, notCoveringEnd }
    private let code: Code
    /// The hash where the problem was found.
    public let hash: UInt64

    /// No ranges at all.
    public static let empty = ShardMapError(code: .empty, hash: 0)
    /// A hash that no range covers.
    public static func gap(at hash: UInt64) -> ShardMapError { ShardMapError(code: .gap, hash: hash) }
    /// A hash that two ranges cover.
    public static func overlap(at hash: UInt64) -> ShardMapError { ShardMapError(code: .overlap, hash: hash) }
    /// The first range does not start at 0.
    public static func notCoveringStart(_ hash: UInt64) -> ShardMapError { ShardMapError(code: .notCoveringStart, hash: hash) }
    /// The last range does not end at 2^64.
    public static func notCoveringEnd(_ hash: UInt64) -> ShardMapError { ShardMapError(code: .notCoveringEnd, hash: hash) }

    /// A sentence for logs and API errors.
    public var description: String {
        switch code {
        case .empty: "a shard map needs at least one range"
        case .gap: "no range covers hash \(HashRange.hex(hash))"
        case .overlap: "two ranges cover hash \(HashRange.hex(hash))"
        case .notCoveringStart: "the first range starts at \(HashRange.hex(hash)), not 0"
        case .notCoveringEnd: "the last range ends at \(HashRange.hex(hash)), not the top of the space"
        }
    }
}

/// A generation number plus sorted hash ranges that tile the whole 64-bit space exactly once,
/// each owned by one shard. Every placement scheme compiles down to this.
///
/// Adjacent ranges with the same owner are merged on construction, so two maps that route
/// every hash alike compare equal whatever list built them.
public struct ShardMap: Hashable, Sendable, Codable {
    /// The map's version; every routing decision and fence carries it.
    public let generation: UInt64
    /// Sorted, contiguous, non-overlapping ranges covering `[0, 2^64)`.
    public let assignments: [RangeAssignment]

    /// Validates that `assignments` tile the space exactly once, then normalises them.
    public init(generation: UInt64, assignments: [RangeAssignment]) throws {
        let sorted = assignments.sorted { $0.range < $1.range }
        guard let first = sorted.first, let final = sorted.last else { throw ShardMapError.empty }
        guard first.range.start == 0 else { throw ShardMapError.notCoveringStart(first.range.start) }
        var merged: [RangeAssignment] = [first]
        for next in sorted.dropFirst() {
            let previous = merged[merged.count - 1]
            if next.range.start <= previous.range.last { throw ShardMapError.overlap(at: next.range.start) }
            if next.range.start != previous.range.last + 1 { throw ShardMapError.gap(at: previous.range.last + 1) }
            if next.shard == previous.shard {
                merged[merged.count - 1] = RangeAssignment(
                    range: HashRange(start: previous.range.start, last: next.range.last),
                    shard: next.shard
                )
            } else {
                merged.append(next)
            }
        }
        guard final.range.last == .max else { throw ShardMapError.notCoveringEnd(final.range.last) }
        self.generation = generation
        self.assignments = merged
    }

    private enum CodingKeys: String, CodingKey { case generation, layout, assignments }

    /// Decodes and re-validates a stored map: a corrupt map must never route a write. Reads the
    /// compact `layout` form, and the older list of `assignments`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let generation = try container.decode(UInt64.self, forKey: .generation)
        guard let layout = try container.decodeIfPresent(String.self, forKey: .layout) else {
            try self.init(generation: generation, assignments: container.decode([RangeAssignment].self, forKey: .assignments))
            return
        }
        do {
            self = try ShardMap(generation: generation, layout: Array(layout.utf8))
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .layout, in: container, debugDescription: error.description)
        }
    }

    /// Encodes as `{"generation":N,"layout":"<start hex>=<shard>,…"}` (`layoutBytes`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(generation, forKey: .generation)
        try container.encode(String(decoding: layoutBytes, as: UTF8.self), forKey: .layout)
    }

    /// The assignment whose range holds `hash`, found by binary search in O(log n).
    public func assignment(for hash: UInt64) -> RangeAssignment {
        var low = 0
        var high = assignments.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if assignments[mid].range.start <= hash { low = mid } else { high = mid - 1 }
        }
        return assignments[low]
    }

    /// The shard that owns `hash`.
    public func owner(of hash: UInt64) -> ShardID { assignment(for: hash).shard }

    /// Every shard that owns at least one range, sorted.
    public var shards: [ShardID] { Array(Set(assignments.map(\.shard))).sorted() }

    /// The ranges `shard` owns, in order.
    public func ranges(of shard: ShardID) -> [HashRange] {
        assignments.filter { $0.shard == shard }.map(\.range)
    }

    /// The share of the hash space `shard` owns, from 0 to 1.
    public func fraction(ownedBy shard: ShardID) -> Double {
        ranges(of: shard).reduce(0) { $0 + $1.fraction }
    }

    /// The same ranges under another generation.
    public func withGeneration(_ generation: UInt64) -> ShardMap {
        ShardMap(generation: generation, validated: assignments)
    }

    /// `validated` must already be sorted, contiguous, covering and merged.
    init(generation: UInt64, validated: [RangeAssignment]) {
        self.generation = generation
        self.assignments = validated
    }
}
