import Foundation
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// The shard maps a scale estimate measures, and what their add-shard plans look like: built by
/// Reshard's own placement and planner, no I/O.
struct ScaleMaps {
    /// A map and the add-shard plan from it, with the cost of building and looking up.
    struct Subject {
        let label: String
        let shards: Int
        let virtualNodes: Int
        let plan: MigrationPlan
        let buildMillis: Double
    }

    /// A ring of 40 shards with just enough virtual nodes for `ranges` ranges (adjacent arcs of
    /// one shard merge, so a few more points than ranges).
    static func ring(ranges: Int) throws -> Subject {
        let count = 40
        var nodes = (ranges + count - 1) / count
        while true {
            let subject = try subject("\(grouped(ranges)) ranges", shards: count, virtualNodes: nodes)
            if subject.plan.source.assignments.count >= ranges { return subject }
            nodes += 1
        }
    }

    /// The ring `reshard init` builds for `shards` shards (256 points each), and the plan of
    /// `add_shard` on it (`MigrationPlanner.plan(.addShard)`: the arcs the newcomer's points capture).
    static func subject(_ label: String, shards count: Int, virtualNodes: Int = 256) throws -> Subject {
        let ids = try ids(count + 1)
        let placement = RingPlacement(virtualNodes: virtualNodes)
        var builds: [Double] = []
        var map: ShardMap?
        // The build is timed a few times: one sort of N·points dominates it.
        for _ in 0..<3 {
            let started = ContinuousClock.now
            map = try placement.shardMap(for: Array(ids.dropLast()), generation: 1)
            builds.append(seconds(since: started) * 1_000)
        }
        let source = try map.orThrow("ring")
        let plan = try MigrationPlanner.plan(.addShard(ids[count]), current: source, registered: Set(ids), virtualNodes: virtualNodes)
        return Subject(label: label, shards: count, virtualNodes: virtualNodes, plan: plan, buildMillis: median(builds))
    }

    /// Shards `s1 … s<count>`.
    static func ids(_ count: Int) throws -> [ShardID] { try (1...count).map { try ShardID("s\($0)").orThrow("shard id") } }

    /// The planner's balanced add on `map`: the newcomer takes exactly 1/(N+1) of the rows from
    /// the fullest shards down. The rows are `sample` evenly spaced hashes, which is what many
    /// uniformly hashed rows look like (per-shard counts follow the map's shares, without the
    /// noise of a random sample).
    static func balancedAdd(_ map: ShardMap, sample: Int) throws -> MigrationPlan {
        let step = UInt64.max / UInt64(sample)
        let hashes = (0..<UInt64(sample)).map { $0 * step + step / 2 }
        let newcomer = try ShardID("s\(map.shards.count + 1)").orThrow("shard id")
        return try MigrationPlanner.balancedAdd([newcomer], current: map, rowHashes: hashes)
    }

    /// Nanoseconds per `owner(of:)` over `count` seeded random hashes, the median of `runs`.
    static func lookupNanos(_ map: ShardMap, count: Int, runs: Int) -> Double {
        var random = SeededRandom(seed: 42)
        let hashes = (0..<count).map { _ in random.next() }
        var results: [Double] = []
        var sink = 0
        for _ in 0..<runs {
            let started = ContinuousClock.now
            for hash in hashes { sink &+= map.owner(of: hash).rawValue.utf8.count }
            results.append(seconds(since: started) * 1e9 / Double(count))
        }
        // A use of the sum, so the optimiser cannot drop the lookups as dead code.
        if sink < 0 { say("lookup checksum \(sink)") }
        return median(results)
    }

    /// The JSON the metadata stores for `map` (sorted keys, as `MetadataJSON`), with the median
    /// milliseconds to encode and to decode it (decoding validates the tiling again).
    static func json(_ map: ShardMap, runs: Int) throws -> (bytes: Int, encodeMillis: Double, decodeMillis: Double) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var encodes: [Double] = []
        var decodes: [Double] = []
        var data = Data()
        for _ in 0..<runs {
            var started = ContinuousClock.now
            data = try encoder.encode(map)
            encodes.append(seconds(since: started) * 1_000)
            started = ContinuousClock.now
            let decoded = try JSONDecoder().decode(ShardMap.self, from: data)
            decodes.append(seconds(since: started) * 1_000)
            guard decoded == map else { throw BenchError("the map did not decode to itself") }
        }
        return (data.count, median(encodes), median(decodes))
    }
}

/// The median of `values` (the lower middle one of an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    return values.sorted()[(values.count - 1) / 2]
}
