/// Evens out rows over shards while moving as few as it can: every shard above its share gives
/// away exactly its excess (the rows at the high end of its own ranges), and the pieces fill the
/// shards below their share in hash order, split where a receiver is full. Rows moved are the
/// excess and no more; rows that share a hash (one key's co-located rows) are never split, so a
/// share can be off by such a group.
///
/// With `newcomers`, only they receive: each takes its share (the mean over all shards), from
/// the fullest shards down (water-filling), so an add moves exactly 1/(N+1) of the rows and the
/// largest shards shrink first.
enum Rebalancer {
    static func plan(current: ShardMap, shards: [ShardID], rowHashes: [UInt64], newcomers: Set<ShardID> = []) throws(PlanError)
        -> MigrationPlan
    {
        let hashes = rowHashes.sorted()
        guard !hashes.isEmpty else { throw .noRows }
        let shardIndex = Dictionary(shards.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        // Every row's owner, in hash order.
        let owners = hashes.map { hash in
            guard let owner = shardIndex[current.owner(of: hash)] else {
                preconditionFailure("rebalancer called without shard \(current.owner(of: hash)) of the map")
            }
            return owner
        }
        var counts = Array(repeating: 0, count: shards.count)
        for owner in owners { counts[owner] += 1 }
        let shares = shares(counts, total: hashes.count)
        let (give, need) =
            newcomers.isEmpty
            ? (shards.indices.map { max(0, counts[$0] - shares[$0]) }, shards.indices.map { max(0, shares[$0] - counts[$0]) })
            : waterFill(counts, shares: shares, receivers: Set(shards.indices.filter { newcomers.contains(shards[$0]) }))

        // The pieces given away: for each donor, its rows from the cut to the end of the space.
        var pieces: [(range: HashRange, first: Int, end: Int)] = []
        for donor in shards.indices where give[donor] > 0 {
            let rows = owners.indices.filter { owners[$0] == donor }
            var cut = rows.count - give[donor]
            // Never cut between rows that share a hash.
            while cut > 0 && cut < rows.count && hashes[rows[cut]] == hashes[rows[cut - 1]] { cut += 1 }
            guard cut < rows.count else { continue }
            let from = hashes[rows[cut]]
            for assignment in current.assignments where assignment.shard == shards[donor] {
                guard let range = assignment.range.intersection(HashRange(start: from, last: .max)) else { continue }
                let first = lowerBound(hashes, range.start)
                let end = range.last == .max ? hashes.count : lowerBound(hashes, range.last + 1)
                pieces.append((range, first, end))
            }
        }
        pieces.sort { $0.range < $1.range }

        // Fill the receivers in order, splitting a piece where the current receiver is full.
        var receivers = shards.indices.filter { need[$0] > 0 }.map { ($0, need[$0]) }[...]
        var overrides: [RangeAssignment] = []
        for piece in pieces {
            var range = piece.range
            var first = piece.first
            while let (receiver, need) = receivers.first {
                let available = piece.end - first
                guard available > need else {
                    overrides.append(RangeAssignment(range: range, shard: shards[receiver]))
                    receivers[receivers.startIndex].1 -= available
                    if available == need { receivers.removeFirst() }
                    break
                }
                var split = first + need
                while split < piece.end && hashes[split] == hashes[split - 1] { split += 1 }
                guard split < piece.end, hashes[split] > range.start else {
                    overrides.append(RangeAssignment(range: range, shard: shards[receiver]))
                    receivers.removeFirst()
                    break
                }
                overrides.append(RangeAssignment(range: HashRange(start: range.start, last: hashes[split] - 1), shard: shards[receiver]))
                receivers.removeFirst()
                range = HashRange(start: hashes[split], last: range.last)
                first = split
            }
        }
        let target: ShardMap
        do {
            target = try current.painting(overrides, generation: current.generation + 1)
        } catch {
            preconditionFailure("rebalancer produced an invalid map: \(error)")
        }
        // The least this plan must move: every row above its share, or the newcomers' shares.
        let excess = give.reduce(0, +)
        let plan = MigrationPlan(kind: .rebalance, source: current, target: target, idealFraction: Double(excess) / Double(hashes.count))
        guard !plan.moves.isEmpty else { throw .nothingToMove }
        return plan
    }

    /// Each shard's share of `total` rows: equal, the remainder going to the shards that hold
    /// most now (so they keep one row more instead of moving it).
    static func shares(_ counts: [Int], total: Int) -> [Int] {
        var shares = Array(repeating: total / counts.count, count: counts.count)
        let largest = counts.indices.sorted { (counts[$0], -$0) > (counts[$1], -$1) }
        for index in largest.prefix(total % counts.count) { shares[index] += 1 }
        return shares
    }

    /// What each shard gives and needs when only `receivers` receive: they need their shares,
    /// and the others give from the top down to the level where the gifts cover that need.
    static func waterFill(_ counts: [Int], shares: [Int], receivers: Set<Int>) -> (give: [Int], need: [Int]) {
        let need = counts.indices.map { receivers.contains($0) ? max(0, shares[$0] - counts[$0]) : 0 }
        let total = need.reduce(0, +)
        let donors = counts.indices.filter { !receivers.contains($0) }
        func above(_ level: Int) -> Int { donors.reduce(0) { $0 + max(0, counts[$1] - level) } }
        // The highest level whose excess covers the need.
        var (low, high) = (0, counts.max() ?? 0)
        while low < high {
            let middle = (low + high + 1) / 2
            if above(middle) >= total { low = middle } else { high = middle - 1 }
        }
        var give = counts.indices.map { donors.contains($0) ? max(0, counts[$0] - low) : 0 }
        // The level gives up to one row per donor too many: the smallest donors keep them.
        var surplus = give.reduce(0, +) - total
        for donor in donors.sorted(by: { counts[$0] < counts[$1] }) where surplus > 0 && give[donor] > 0 {
            give[donor] -= 1
            surplus -= 1
        }
        return (give, need)
    }

    /// The index of the first hash at or above `value`.
    private static func lowerBound(_ hashes: [UInt64], _ value: UInt64) -> Int {
        var (low, high) = (0, hashes.count)
        while low < high {
            let middle = (low + high) / 2
            if hashes[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
