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

/// Why a list of moves cannot be applied to a map.
public struct ShardMapMovesError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
}

extension ShardMap {
    /// This map with every move's range given to its target, under `generation`: the inverse of
    /// `diff(to:)` (`a.applying(a.diff(to: b), generation: b.generation) == b`). A metadata store
    /// keeps a published map as the moves from the one it replaced, so that a cutover writes
    /// kilobytes rather than the whole map inside its write hold. Refused, not repaired, when the
    /// moves are out of order, overlap, or move a range from a shard that does not own it.
    public func applying(_ moves: [Move], generation: UInt64) throws(ShardMapMovesError) -> ShardMap {
        for index in moves.indices.dropFirst() where moves[index].range.start <= moves[index - 1].range.last {
            throw ShardMapMovesError(description: "move \(moves[index]) is out of order or overlaps the one before it")
        }
        var result: [RangeAssignment] = []
        result.reserveCapacity(assignments.count + 2 * moves.count)
        func append(_ start: UInt64, _ last: UInt64, _ shard: ShardID) {
            if let previous = result.last, previous.shard == shard {
                result[result.count - 1] = RangeAssignment(range: HashRange(start: previous.range.start, last: last), shard: shard)
            } else {
                result.append(RangeAssignment(range: HashRange(start: start, last: last), shard: shard))
            }
        }
        var next = 0
        for assignment in assignments {
            var cursor = assignment.range.start
            while true {
                guard next < moves.count, moves[next].range.start <= assignment.range.last else {
                    append(cursor, assignment.range.last, assignment.shard)
                    break
                }
                let move = moves[next]
                guard move.source == assignment.shard else {
                    throw ShardMapMovesError(
                        description: "move \(move) does not start from \(assignment.shard), the owner of \(assignment.range)")
                }
                if move.range.start > cursor { append(cursor, move.range.start - 1, assignment.shard) }
                let last = min(move.range.last, assignment.range.last)
                append(max(cursor, move.range.start), last, move.target)
                if last == assignment.range.last {
                    if move.range.last == last { next += 1 }
                    break
                }
                cursor = last + 1
                next += 1
            }
        }
        return ShardMap(generation: generation, validated: result)
    }
}
