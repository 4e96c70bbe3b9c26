extension ShardMap {
    /// This map with `overrides` painted over it at `generation`: every hash in an override
    /// range goes to the override's shard, every other hash keeps its owner. Overrides must not
    /// overlap one another.
    public func painting(_ overrides: [RangeAssignment], generation: UInt64) throws -> ShardMap {
        let sorted = overrides.sorted { $0.range < $1.range }
        var result: [RangeAssignment] = []
        var next = 0
        for base in assignments {
            var cursor = base.range.start
            var open = true
            // Skip overrides that end before this base range.
            while next < sorted.count && sorted[next].range.last < base.range.start { next += 1 }
            var index = next
            while open && index < sorted.count && sorted[index].range.start <= base.range.last {
                let override = sorted[index].range
                if override.start > cursor {
                    result.append(RangeAssignment(range: HashRange(start: cursor, last: override.start - 1), shard: base.shard))
                }
                let overlapEnd = min(override.last, base.range.last)
                if overlapEnd >= cursor {
                    result.append(
                        RangeAssignment(range: HashRange(start: max(cursor, override.start), last: overlapEnd), shard: sorted[index].shard))
                }
                if overlapEnd == base.range.last {
                    open = false
                } else {
                    cursor = overlapEnd + 1
                    index += 1
                }
            }
            if open {
                result.append(RangeAssignment(range: HashRange(start: cursor, last: base.range.last), shard: base.shard))
            }
        }
        return try ShardMap(generation: generation, assignments: result)
    }
}
