import ArgumentParser
import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore

/// Verification cost against the floor any verification must pay: reading the move on both
/// sides. One range of two SQLite shards holds `--rows` rows on both sides (the state after a
/// copy); each round times a plain chunked full scan of both sides, a verification of the clean
/// move, and a verification after `--corrupt` rows of the new owner were damaged (every class),
/// which must find and repair exactly those.
struct VerifyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verification of one move against a plain full scan of both sides (goal: at most 2x).",
        discussion: """
            Example:
              swift run -c release reshard-bench verify --rows 100000
            """
    )

    @Option(help: "Rows in the moving range.")
    var rows = 100_000

    @Option(help: "Rows of the new owner damaged before the second verification of each round.")
    var corrupt = 100

    @Option(help: "Rounds; the median of each figure is reported.")
    var rounds = 3

    @Option(help: "Sub-ranges each move is compared in.")
    var subranges = 256

    @Option(help: "Where the JSON result goes.")
    var out = "benchmarks/results"

    func validate() throws {
        guard (1_000...10_000_000).contains(rows) else { throw ValidationError("--rows must be 1,000…10,000,000") }
        guard (0...10_000).contains(corrupt), corrupt < rows / 2 else {
            throw ValidationError("--corrupt must be 0…10,000 and under rows/2")
        }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be 1…20") }
        guard (1...65_536).contains(subranges) else { throw ValidationError("--subranges must be 1…65,536") }
    }

    func run() async throws {
        var logger = Logger(label: "reshard-bench")
        logger.logLevel = .warning
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-bench-verify", shards: 2, metricsFactory: NOOPMetricsHandler.instance, logger: logger)
        defer { cluster.remove() }
        let router = cluster.router
        _ = try await router.createTable(name: "bench", primaryKey: "id", shardKey: "id")
        let table = try TableName("bench").orThrow("table name")
        let (source, target) = try (ShardID("s1").orThrow("shard id"), ShardID("s2").orThrow("shard id"))
        // The widest range s1 owns becomes the one move.
        let range = try router.shardMap.ranges(of: source).max { $0.fraction < $1.fraction }.orThrow("range of s1")
        let plan = try MigrationPlanner.plan(.moveRange(range, to: target), current: router.shardMap, registered: [source, target])
        let sourceStore = try router.store(source).orThrow("store s1")
        let targetStore = try router.store(target).orThrow("store s2")
        say("loading \(grouped(rows)) rows into one range on both sides …")
        let loaded = try await load(range: range, table: table, into: [sourceStore, targetStore])
        var machine = MigrationStateMachine(
            id: "bench", plan: plan, tables: [table], settings: MigrationSettings(verifySubranges: subranges, canarySteps: []))
        machine.on(.start, now: 0)
        machine.on(.prepared(positions: [source: try await sourceStore.changePosition()]), now: 0)

        var scans: [Double] = []
        var cleans: [Double] = []
        var repairs: [Double] = []
        var found: [DiffClass: Int] = [:]
        for round in 1...rounds {
            let scan = try await timed {
                for store in [sourceStore, targetStore] {
                    var seen = 0
                    try await store.forEachChunk(table: table, range: range) { seen += $0.count }
                    guard seen == rows else { throw BenchError("scanned \(seen) rows, expected \(rows)") }
                }
            }
            var report = VerificationReport(at: 0)
            let clean = try await timed {
                report = try await MigrationVerification.run(machine, stores: router, now: 0)
            }
            guard report.passed, report.differences.isEmpty, report.rowsCompared == rows else {
                throw BenchError("the clean move did not verify clean: \(report.differences), \(report.rowsCompared) rows")
            }
            let planted = try await damage(targetStore, table: table, rows: loaded, count: corrupt, round: round)
            let repair = try await timed {
                report = try await MigrationVerification.run(machine, stores: router, now: 0)
            }
            guard report.passed, report.differences.values.reduce(0, +) == planted else {
                throw BenchError("planted \(planted) differences, verification found \(report.differences)")
            }
            found = report.differences
            scans.append(scan)
            cleans.append(clean)
            repairs.append(repair)
            say(
                String(
                    format: "round %d: full scan of both sides %.1f ms · verify %.1f ms (%.2fx) · verify + repair of %d rows %.1f ms",
                    round,
                    scan, clean, clean / scan, planted, repair))
        }
        let result = VerifyBenchResult(
            date: ISO8601DateFormatter().string(from: Date()), rows: rows, subranges: subranges, corrupt: corrupt, rounds: rounds,
            fullScanMillis: median(scans), verifyMillis: median(cleans), verifyRepairMillis: median(repairs),
            differences: Dictionary(uniqueKeysWithValues: found.map { ($0.key.rawValue, $0.value) }),
            ratio: median(scans) > 0 ? median(cleans) / median(scans) : 0)
        say("")
        say(result.markdown)
        say("\nwrote \(try result.write(to: out))")
    }

    /// Rows whose key hashes into `range`, written identically to every store.
    private func load(range: HashRange, table: TableName, into stores: [any ShardStore]) async throws -> [StoredRow] {
        var all: [StoredRow] = []
        var batch: [StoredRow] = []
        var index = 0
        while all.count < rows {
            let pk = "b\(index)"
            index += 1
            guard range.contains(KeyHash.of(pk)) else { continue }
            let row = StoredRow(
                table: table, pk: pk, shardKey: pk, version: HybridLogicalClock.timestamp(millis: 1_700_000_000_000) + UInt64(index),
                body: "{\"n\":\(index),\"amount\":\(index % 1_000).25,\"payload\":\"reshard-verify-benchmark-row\"}")
            batch.append(row)
            all.append(row)
            if batch.count == 5_000 || all.count == rows {
                for store in stores { _ = try await store.apply(batch) }
                batch = []
            }
        }
        return all
    }

    /// Damages `count` rows of the new owner, cycling through every class; returns how many.
    private func damage(_ store: any ShardStore, table: TableName, rows: [StoredRow], count: Int, round: Int) async throws -> Int {
        var overwrite: [StoredRow] = []
        var remove: [String] = []
        let stride = max(1, rows.count / max(1, count))
        for (n, index) in Swift.stride(from: round % stride, to: rows.count, by: stride).prefix(count).enumerated() {
            var row = rows[index]
            switch n % 4 {
            case 0: remove.append(row.pk)
            case 1: row.version -= 1
            case 2: row.body = "{\"damaged\":\(round)}"
            default: row.version += 1_000
            }
            if n % 4 != 0 { overwrite.append(row) }
        }
        _ = try await store.repair(table: table, overwrite: overwrite, remove: remove)
        return overwrite.count + remove.count
    }

    private func timed(_ body: () async throws -> Void) async throws -> Double {
        let started = ContinuousClock.now
        try await body()
        return Double((ContinuousClock.now - started).wholeMicroseconds) / 1_000
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}

/// The figures of one `reshard-bench verify` run.
struct VerifyBenchResult: Codable {
    let date: String
    let rows: Int
    let subranges: Int
    let corrupt: Int
    let rounds: Int
    let fullScanMillis: Double
    let verifyMillis: Double
    let verifyRepairMillis: Double
    let differences: [String: Int]
    /// Verification time over full-scan time: the figure the goal (at most 2) is about.
    let ratio: Double

    var markdown: String {
        let goal = ratio <= 2 ? "met" : "MISSED"
        return """
            | figure (median of \(rounds)) | ms | vs full scan |
            | --- | ---: | ---: |
            | full scan of both sides, \(grouped(rows)) rows each | \(String(format: "%.1f", fullScanMillis)) | 1.00x |
            | verification, \(subranges) sub-ranges, clean | \(String(format: "%.1f", verifyMillis)) | \(String(format: "%.2fx", ratio)) |
            | verification + repair of \(corrupt) damaged rows | \(String(format: "%.1f", verifyRepairMillis)) | \(String(format: "%.2fx", verifyRepairMillis / max(fullScanMillis, 0.001))) |

            goal: verification within 2x of the full scan: \(goal) (\(String(format: "%.2fx", ratio)))
            """
    }

    func write(to folder: String) throws -> String {
        try BenchResultFile.write(self, name: "verify", date: date, to: folder)
    }
}
