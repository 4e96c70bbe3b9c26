import ArgumentParser
import Foundation
import ReshardCore

/// Movement and balance of placement schemes, computed over real key hashes (no I/O): for N
/// shards, the fraction of rows that move when one shard is added, against the ideal 1/(N+1),
/// and the largest shard's rows over the mean, for Reshard's ring at several virtual-node
/// counts, jump consistent hash, and the rebalance planner run after the add.
struct PlacementBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "placement",
        abstract: "Rows moved on add shard against 1/(N+1), and max/mean rows per shard, for ring, jump hash and the rebalancer.",
        discussion: """
            Example:
              swift run -c release reshard-bench placement --quick
            """
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Rows (keys) placed; default 1,000,000, or 200,000 with --quick.")
    var rows: Int?

    func validate() throws {
        if let rows, !(1_000...10_000_000).contains(rows) { throw ValidationError("--rows must be 1,000…10,000,000") }
    }

    func run() async throws {
        try Self.measure(rows: rows ?? (options.quick ? 200_000 : 1_000_000)).present(out: options.out)
    }

    static let shardCounts = [4, 8, 16, 32, 64]
    static let virtualNodeCounts = [16, 64, 256, 1_024]

    static func measure(rows: Int) throws -> PlacementReport {
        let started = ContinuousClock.now
        PeakMemory.reset()
        let hashes = (0..<rows).map { KeyHash.of("k\($0)") }
        var results: [PlacementReport.Row] = []
        for count in shardCounts {
            let shards = (1...count + 1).compactMap { ShardID("s\($0)") }
            let (old, newcomer) = (Array(shards.dropLast()), shards[count])
            var ringAfter: ShardMap?
            for nodes in virtualNodeCounts {
                let before = try RingPlacement(virtualNodes: nodes).shardMap(for: old, generation: 1)
                let plan = try MigrationPlanner.plan(
                    .addShard(newcomer), current: before, registered: Set(shards), virtualNodes: nodes)
                if nodes == 256 { ringAfter = plan.target }
                results.append(
                    compare(
                        "ring-\(nodes)", shards: count, hashes: hashes, before: { before.owner(of: $0) },
                        after: { plan.target.owner(of: $0) }))
            }
            results.append(
                compare(
                    "jump", shards: count, hashes: hashes, before: { shards[JumpHash.bucket($0, buckets: count)] },
                    after: { shards[JumpHash.bucket($0, buckets: count + 1)] }))
            // The planner's own add: the newcomer takes exactly its share from the fullest shards.
            let ring = try RingPlacement().shardMap(for: old, generation: 1)
            let planned = try MigrationPlanner.balancedAdd([newcomer], current: ring, rowHashes: hashes)
            results.append(
                compare(
                    "rebalance planner add", shards: count, hashes: hashes, before: { ring.owner(of: $0) },
                    after: { planned.target.owner(of: $0) }))
            if let current = ringAfter {
                // The rebalancer runs on the map the default add produced; "moved" is its own movement.
                let plan = try MigrationPlanner.plan(.rebalance, current: current, registered: Set(shards), rowHashes: hashes)
                var row = compare(
                    "ring-256 + rebalance", shards: count, hashes: hashes, shardsBefore: count + 1, before: { current.owner(of: $0) },
                    after: { plan.target.owner(of: $0) })
                row.note = "moved: by the rebalance after the add; ideal: its lower bound \(String(format: "%.4f", plan.idealFraction))"
                row.ideal = plan.idealFraction
                results.append(row)
            }
        }
        return PlacementReport(
            date: ISO8601DateFormatter().string(from: Date()), rows: rows, results: results, seconds: seconds(since: started),
            peakMemoryBytes: PeakMemory.peakBytes)
    }

    /// Rows moved and balance, from every row's owner before and after.
    static func compare(
        _ scheme: String, shards count: Int, hashes: [UInt64], shardsBefore: Int? = nil, before: (UInt64) -> ShardID,
        after: (UInt64) -> ShardID
    ) -> PlacementReport.Row {
        var moved = 0
        var beforeCounts: [ShardID: Int] = [:]
        var afterCounts: [ShardID: Int] = [:]
        for hash in hashes {
            let (from, to) = (before(hash), after(hash))
            beforeCounts[from, default: 0] += 1
            afterCounts[to, default: 0] += 1
            if from != to { moved += 1 }
        }
        func skew(_ counts: [ShardID: Int], shards: Int) -> Double {
            let mean = Double(hashes.count) / Double(shards)
            return Double(counts.values.max() ?? 0) / mean
        }
        let fraction = Double(moved) / Double(hashes.count)
        let ideal = 1 / Double(count + 1)
        return PlacementReport.Row(
            scheme: scheme, shards: count, movedFraction: fraction, ideal: ideal,
            maxOverMeanBefore: skew(beforeCounts, shards: shardsBefore ?? count), maxOverMeanAfter: skew(afterCounts, shards: count + 1))
    }
}

/// The JSON and table of one placement run.
struct PlacementReport: BenchResult, Codable {
    struct Row: Codable, Sendable {
        let scheme: String
        /// Shards before the add.
        let shards: Int
        let movedFraction: Double
        var ideal: Double
        let maxOverMeanBefore: Double
        let maxOverMeanAfter: Double
        var note: String?

        var movedOverIdeal: Double { ideal > 0 ? movedFraction / ideal : 0 }
    }

    var benchmark = "placement"
    let date: String
    let rows: Int
    let results: [Row]
    let seconds: Double
    let peakMemoryBytes: Int

    func write(to folder: String) throws -> String { try BenchResultFile.write(self, name: benchmark, date: date, to: folder) }

    var markdown: String {
        var lines = [
            "| scheme | N → N+1 | moved | ideal | moved/ideal | max/mean before | max/mean after |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in results {
            lines.append(
                String(
                    format: "| %@ | %d → %d | %.4f | %.4f | %.3f | %.3f | %.3f |", r.scheme as NSString, r.shards, r.shards + 1,
                    r.movedFraction, r.ideal, r.movedOverIdeal, r.maxOverMeanBefore, r.maxOverMeanAfter))
        }
        return lines.joined(separator: "\n")
    }

    /// Reshard's rebalance planner, adding one shard to a ring of 256 points per shard, and
    /// evening a ring after the ring's own add; the worst N counts.
    var checks: [TargetCheck] {
        let ring = results.filter { $0.scheme == "rebalance planner add" }
        let rebalanced = results.filter { $0.scheme == "ring-256 + rebalance" }
        var checks: [TargetCheck] = []
        if let worst = ring.max(by: { $0.movedOverIdeal < $1.movedOverIdeal }) {
            checks.append(
                .atMost(
                    "rows moved on add shard vs ideal 1/(N+1)", "core", worst.movedOverIdeal, 1.05,
                    detail: "rebalance planner add, worst N = \(worst.shards): \(String(format: "%.4f", worst.movedFraction)) moved"))
        }
        if let worst = rebalanced.max(by: { $0.maxOverMeanAfter < $1.maxOverMeanAfter }) {
            checks.append(
                .atMost(
                    "max/mean rows per shard after rebalance", "core", worst.maxOverMeanAfter, 1.05,
                    detail: "worst N+1 = \(worst.shards + 1), \(rows) rows"))
        }
        return checks
    }
}
