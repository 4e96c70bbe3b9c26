/// Evens out measured load over the same shards by moving pieces of the map, cut on the
/// routers' hash buckets (the finest grain they count, so the load of every piece is what was
/// measured, apportioned only where a map range cuts a bucket).
///
/// Every shard above the mean gives pieces away, densest first (most load per share of the
/// hash space, so the fewest rows move for the load moved), each piece only if giving it brings
/// the shard nearer the mean. The pieces given then go, largest first, each to the shard that is
/// least loaded at that moment (longest-processing-time first). One piece hotter than the mean
/// cannot be split: the best a plan can do is leave it alone on its shard.
enum LoadBalancer {
    struct Piece {
        let range: HashRange
        let shard: ShardID
        let load: Double
        /// Load per share of the hash space.
        var density: Double { load / range.fraction }
    }

    /// A shard within this share of the mean gives nothing: moving data to gain less is churn.
    static let tolerance = 0.01

    static func plan(current: ShardMap, histogram: [UInt16: Double], kind: MigrationKind) throws(PlanError) -> MigrationPlan {
        let pieces = loadedPieces(current, histogram)
        let shards = current.shards
        var loads = Dictionary(uniqueKeysWithValues: shards.map { ($0, 0.0) })
        for piece in pieces { loads[piece.shard, default: 0] += piece.load }
        let total = shards.reduce(0) { $0 + (loads[$1] ?? 0) }
        guard total > 0 else { throw .noLoad }
        let mean = total / Double(shards.count)

        var given: [Piece] = []
        for donor in shards where (loads[donor] ?? 0) > mean * (1 + tolerance) {
            let own = pieces.filter { $0.shard == donor }.sorted { ($1.density, $0.range) < ($0.density, $1.range) }
            for piece in own {
                let excess = (loads[donor] ?? 0) - mean
                guard excess > mean * tolerance else { break }
                // Nearer the mean after giving it: the piece is under twice the excess.
                guard piece.load < 2 * excess else { continue }
                loads[donor, default: 0] -= piece.load
                given.append(piece)
            }
        }
        var overrides: [RangeAssignment] = []
        for piece in given.sorted(by: { ($1.load, $0.range) < ($0.load, $1.range) }) {
            // Least loaded first; equal loads by id, so the plan is the same on every run.
            guard let receiver = shards.min(by: { (loads[$0] ?? 0, $0) < (loads[$1] ?? 0, $1) }) else { break }
            loads[receiver, default: 0] += piece.load
            if receiver != piece.shard { overrides.append(RangeAssignment(range: piece.range, shard: receiver)) }
        }
        let target: ShardMap
        do {
            target = try current.painting(overrides, generation: current.generation + 1)
        } catch {
            preconditionFailure("load balancer produced an invalid map: \(error)")
        }
        let plan = MigrationPlan(kind: kind, source: current, target: target, idealFraction: overrides.reduce(0) { $0 + $1.range.fraction })
        guard !plan.moves.isEmpty else { throw .nothingToMove }
        return plan
    }

    /// Every part of the map that saw load: each range cut on bucket boundaries, with its
    /// bucket's load apportioned by the share of the bucket it covers (as `shardLoads` does).
    static func loadedPieces(_ map: ShardMap, _ histogram: [UInt16: Double]) -> [Piece] {
        var pieces: [Piece] = []
        for bucket in histogram.keys.sorted() where Int(bucket) < LoadWindows.bucketCount {
            let value = histogram[bucket, default: 0]
            guard value > 0 else { continue }
            let whole = LoadWindows.range(of: bucket)
            var hash = whole.start
            while true {
                let owner = map.assignment(for: hash)
                let piece = HashRange(start: hash, last: min(owner.range.last, whole.last))
                pieces.append(Piece(range: piece, shard: owner.shard, load: value * LoadWindows.share(of: bucket, coveredBy: piece)))
                guard piece.last < whole.last else { break }
                hash = piece.last + 1
            }
        }
        return pieces
    }
}
