/// Consistent hashing with virtual nodes: each shard puts `virtualNodes` points on the ring at
/// `xxHash64("<shard>#<i>")`, and a hash belongs to the first point at or after it, wrapping.
///
/// Because a shard's points depend only on its own name, adding a shard moves only the ranges
/// its new points capture (about 1/(N+1) of the space, all toward it), and removing one moves
/// only its own ranges.
public struct RingPlacement: PlacementPlanner, Hashable {
    /// Points per shard.
    public let virtualNodes: Int

    /// The default of 256 points per shard keeps the largest shard within a few percent of the mean.
    public init(virtualNodes: Int = 256) {
        precondition(virtualNodes > 0, "a ring needs at least one virtual node per shard")
        self.virtualNodes = virtualNodes
    }

    /// The ring's ranges, one per arc between consecutive points.
    public func assignments(for shards: [ShardID]) throws -> [RangeAssignment] {
        try PlacementError.validate(shards)
        var points: [(hash: UInt64, shard: ShardID)] = []
        points.reserveCapacity(shards.count * virtualNodes)
        for shard in shards {
            for node in 0..<virtualNodes {
                points.append((XXHash64.hash("\(shard.rawValue)#\(node)"), shard))
            }
        }
        // Ties go to the smaller shard name, so the ring is the same whatever order shards come in.
        points.sort { ($0.hash, $0.shard) < ($1.hash, $1.shard) }
        var result: [RangeAssignment] = []
        var start: UInt64 = 0
        var startIsOpen = true
        for point in points where startIsOpen && point.hash >= start {
            result.append(RangeAssignment(range: HashRange(start: start, last: point.hash), shard: point.shard))
            if point.hash == .max {
                startIsOpen = false
            } else {
                start = point.hash + 1
            }
        }
        if startIsOpen, let first = points.first {
            // The arc after the last point wraps to the first point's owner.
            result.append(RangeAssignment(range: HashRange(start: start, last: .max), shard: first.shard))
        }
        return result
    }
}

/// Even ranges: shard i of N owns `[i·2^64/N, (i+1)·2^64/N)` in the order given.
public struct EvenPlacement: PlacementPlanner, Hashable {
    /// Even ranges need no parameters.
    public init() {}

    /// N contiguous ranges of equal size (within one hash).
    public func assignments(for shards: [ShardID]) throws -> [RangeAssignment] {
        try PlacementError.validate(shards)
        let count = UInt64(shards.count)
        return shards.enumerated().map { index, shard in
            let start = Self.boundary(UInt64(index), of: count)
            let last = index == shards.count - 1 ? UInt64.max : Self.boundary(UInt64(index) + 1, of: count) - 1
            return RangeAssignment(range: HashRange(start: start, last: last), shard: shard)
        }
    }

    /// `floor(i · 2^64 / n)` for `i < n`, computed without overflow.
    static func boundary(_ index: UInt64, of count: UInt64) -> UInt64 {
        count.dividingFullWidth((high: index, low: 0)).quotient
    }
}
