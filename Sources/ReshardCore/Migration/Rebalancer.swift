/// Re-cuts ranges so every shard holds the same number of rows (within the rows that share one
/// hash, which cannot be split), moving as few rows as it can: the space is cut at row-count
/// quantiles, and each slice goes to the shard that already holds most of its rows.
enum Rebalancer {
    static func plan(current: ShardMap, rowHashes: [UInt64]) throws(PlanError) -> MigrationPlan {
        let hashes = rowHashes.sorted()
        guard !hashes.isEmpty else { throw .noRows }
        let shards = current.shards
        let count = shards.count
        // Cut points: the first hash of each slice after the first, at rank i·n/N.
        var cuts: [UInt64] = []
        for slice in 1..<count {
            var rank = slice * hashes.count / count
            // Never cut between rows that share a hash: they are one key's co-located rows.
            while rank > 0 && rank < hashes.count && hashes[rank] == hashes[rank - 1] { rank += 1 }
            if rank < hashes.count, hashes[rank] > (cuts.last ?? 0) { cuts.append(hashes[rank]) }
        }
        var slices: [HashRange] = []
        var start: UInt64 = 0
        for cut in cuts where cut > start {
            slices.append(HashRange(start: start, last: cut - 1))
            start = cut
        }
        slices.append(HashRange(start: start, last: .max))

        // How many rows of each slice each shard holds now.
        var overlap: [[Int]] = Array(repeating: Array(repeating: 0, count: shards.count), count: slices.count)
        let shardIndex = Dictionary(uniqueKeysWithValues: shards.enumerated().map { ($1, $0) })
        var sliceIndex = 0
        for hash in hashes {
            while !slices[sliceIndex].contains(hash) { sliceIndex += 1 }
            if let owner = shardIndex[current.owner(of: hash)] { overlap[sliceIndex][owner] += 1 }
        }
        // Greedy assignment by largest overlap first; N ≤ a few hundred, so N² pairs is cheap.
        var pairs: [(rows: Int, slice: Int, shard: Int)] = []
        for slice in slices.indices {
            for shard in shards.indices { pairs.append((overlap[slice][shard], slice, shard)) }
        }
        pairs.sort { ($0.rows, -$0.slice, -$0.shard) > ($1.rows, -$1.slice, -$1.shard) }
        var sliceOwner: [Int: ShardID] = [:]
        var used = Set<Int>()
        for pair in pairs where sliceOwner[pair.slice] == nil && !used.contains(pair.shard) {
            sliceOwner[pair.slice] = shards[pair.shard]
            used.insert(pair.shard)
        }
        let assignments = slices.indices.map { RangeAssignment(range: slices[$0], shard: sliceOwner[$0] ?? shards[0]) }
        let target: ShardMap
        do {
            target = try ShardMap(generation: current.generation + 1, assignments: assignments)
        } catch {
            preconditionFailure("rebalancer produced an invalid map: \(error)")
        }
        // The least any rebalance must move: every row above the mean on an overfull shard.
        var perShard = Array(repeating: 0, count: shards.count)
        for hash in hashes { if let owner = shardIndex[current.owner(of: hash)] { perShard[owner] += 1 } }
        let mean = Double(hashes.count) / Double(count)
        let excess = perShard.reduce(0.0) { $0 + max(0, Double($1) - mean) }
        let plan = MigrationPlan(kind: .rebalance, source: current, target: target, idealFraction: excess / Double(hashes.count))
        guard !plan.moves.isEmpty else { throw .nothingToMove }
        return plan
    }
}
