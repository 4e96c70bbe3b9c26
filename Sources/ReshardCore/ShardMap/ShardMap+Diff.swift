/// One hash range going from a source shard to a target shard.
public struct Move: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The moving range.
    public let range: HashRange
    /// The shard that owns it before.
    public let source: ShardID
    /// The shard that owns it after.
    public let target: ShardID

    /// A move of `range` from `source` to `target`.
    public init(range: HashRange, source: ShardID, target: ShardID) {
        self.range = range
        self.source = source
        self.target = target
    }

    /// `range source→target`.
    public var description: String { "\(range) \(source)→\(target)" }
}

extension ShardMap {
    /// The moves that turn this map into `new`: every hash whose owner changes is in exactly one
    /// move, adjacent pieces with the same source and target are merged, and the result is sorted.
    public func diff(to new: ShardMap) -> [Move] {
        var moves: [Move] = []
        var i = 0
        var j = 0
        var cursor: UInt64 = 0
        while i < assignments.count && j < new.assignments.count {
            let old = assignments[i]
            let next = new.assignments[j]
            let last = min(old.range.last, next.range.last)
            if old.shard != next.shard {
                let piece = HashRange(start: cursor, last: last)
                if let previous = moves.last, previous.source == old.shard, previous.target == next.shard,
                    previous.range.last &+ 1 == cursor, previous.range.last != .max
                {
                    moves[moves.count - 1] = Move(
                        range: HashRange(start: previous.range.start, last: last),
                        source: old.shard,
                        target: next.shard
                    )
                } else {
                    moves.append(Move(range: piece, source: old.shard, target: next.shard))
                }
            }
            if last == .max { break }
            cursor = last + 1
            if old.range.last == last { i += 1 }
            if next.range.last == last { j += 1 }
        }
        return moves
    }

    /// The share of the hash space whose owner differs between the two maps.
    public func movedFraction(to new: ShardMap) -> Double {
        diff(to: new).reduce(0) { $0 + $1.range.fraction }
    }
}
