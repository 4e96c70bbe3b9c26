import ArgumentParser
import Foundation
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// Copy throughput: a whole shard of rows of about 200 bytes moved to an empty shard by a live
/// migration, against the raw bulk copy of the same rows between the same backend pair in the
/// same run (SQLite: `INSERT … SELECT` across attached files; PostgreSQL: `COPY … TO STDOUT`
/// piped into `COPY … FROM STDIN`, and pgcopydb), with the throttle off and on. A second, ten
/// times smaller move gives the memory comparison: peak memory must not grow with rows moved.
struct CopyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy rows/s and MB/s of a live move against raw bulk copy (and pgcopydb), and peak memory against a 10x smaller move.",
        discussion: """
            Example:
              swift run -c release reshard-bench copy --rows 1000000
            """
    )

    @OptionGroup var options: BenchOptions

    @Option(
        help:
            "Rows moved; default 1,000,000 (also with --quick, which leaves out the throttled move back). The memory comparison moves a tenth as many."
    )
    var rows = 1_000_000

    func validate() throws {
        guard (10_000...10_000_000).contains(rows) else { throw ValidationError("--rows must be 10,000…10,000,000") }
    }

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(environment: environment, rows: rows, quick: options.quick).present(out: options.out)
    }

    /// Every backend's copy figures; a quick run leaves out the throttled move back.
    static func measure(environment: BenchEnvironment, rows: Int, quick: Bool) async throws -> BenchFile<CopyReport> {
        try await BenchFile.measure("copy", environment) { backend in
            try await CopyScenario(backend: backend, servers: environment.servers, rows: rows, withThrottledMove: !quick).measure()
        }
    }
}

/// One backend's copy measurements.
struct CopyScenario {
    let backend: ShardBackend
    let servers: [PostgresEndpoint]
    let rows: Int
    var withThrottledMove = true

    func measure() async throws -> CopyReport {
        say("copy, \(backend.rawValue): a \(grouped(rows / 10))-row move for the memory baseline …")
        let small = try await withCluster { cluster, manager in
            _ = try await BenchData.load(cluster, table: benchTable, rows: rows / 10)
            return try await move(cluster, manager, to: 2, throttled: false, label: "small move")
        }
        return try await withCluster { cluster, manager in
            say("copy, \(backend.rawValue): loading \(grouped(rows)) rows into s1 …")
            let bytes = try await BenchData.load(cluster, table: benchTable, rows: rows)
            var baselines: [CopyReport.Baseline] = []
            baselines.append(try await rawCopy(cluster))
            if backend == .postgres, let pgcopydb = BenchEnvironment.pgcopydb {
                baselines.append(try await self.pgcopydb(pgcopydb, cluster))
            }
            for baseline in baselines {
                say(String(format: "  %@: %.0f rows/s in %.2f s", baseline.method as NSString, baseline.rowsPerSecond, baseline.seconds))
            }
            var moves = [try await move(cluster, manager, to: 2, throttled: false, label: "s1 → s2, throttle off")]
            // The throttled move back is left out of quick runs (the latency scenario throttles).
            if withThrottledMove { moves.append(try await move(cluster, manager, to: 1, throttled: true, label: "s2 → s1, throttle on")) }
            return CopyReport(backend: backend.rawValue, rows: rows, bytes: bytes, baselines: baselines, moves: moves, smallMove: small)
        }
    }

    /// A cluster of one shard holding the table, with s2 registered empty; removed afterwards.
    private func withCluster<T>(_ body: (ScratchCluster, MigrationManager) async throws -> T) async throws -> T {
        try await withBenchCluster("copy", backend: backend, shards: 1, servers: servers) { cluster, manager in
            _ = try await cluster.addShard(index: 2)
            return try await body(cluster, manager)
        }
    }

    /// Moves the whole space to shard `index` and reads the copy phase's figures.
    private func move(
        _ cluster: ScratchCluster, _ manager: MigrationManager, to index: Int, throttled: Bool, label: String
    ) async throws -> CopyReport.Move {
        let target = try ShardID("s\(index)").orThrow("shard id")
        PeakMemory.reset()
        let baseline = PeakMemory.currentBytes
        let started = ContinuousClock.now
        let status = try await BenchMigration.run(
            manager, .moveRange(.full, to: target), settings: BenchMigration.settings(latencyFactor: throttled ? 1.2 : nil),
            label: label, showProgress: true
        ).status
        let total = seconds(since: started)
        let peak = PeakMemory.peakBytes
        let spans = BenchMigration.spans(status.machine, now: wallMillis())
        let copy = spans.first { $0.phase == MigrationPhase.copying.rawValue }
        let copied = status.machine.rowsCopied
        let copySeconds = max(0.001, copy?.seconds ?? total)
        let move = CopyReport.Move(
            label: label, throttled: throttled, rowsCopied: copied, copySeconds: copySeconds,
            rowsPerSecond: Double(copied) / copySeconds, totalSeconds: total,
            phases: spans.map { .init(phase: $0.phase, seconds: $0.seconds) },
            peakMemoryBytes: peak, memoryAtStartBytes: baseline)
        say(
            String(
                format: "  %@: %.0f rows/s (copy %.2f s, whole move %.2f s), peak memory %.0f MiB", label as NSString, move.rowsPerSecond,
                copySeconds, total, PeakMemory.megabytes(peak)))
        return move
    }

    /// The backend's own bulk copy of the same rows into a fresh table of the same shape.
    private func rawCopy(_ cluster: ScratchCluster) async throws -> CopyReport.Baseline {
        let source = try ShardID("s1").orThrow("shard id")
        switch backend {
        case .sqlite:
            let file = try await cluster.file(of: source).orThrow("file of s1")
            let seconds = try RawCopy.sqlite(from: file, to: cluster.folder.path + "/raw-copy.sqlite", table: benchTable)
            return .init(method: "sqlite INSERT … SELECT", rows: rows, seconds: seconds)
        case .postgres, .postgresTriggers:
            let from = try await cluster.database(of: source).orThrow("database of s1")
            let to = try await cluster.scratchDatabase(index: 2)
            let seconds = try await RawCopy.postgres(from: from, to: to, table: benchTable)
            return .init(method: "psql COPY TO STDOUT piped to COPY FROM STDIN", rows: rows, seconds: seconds)
        case .memory:
            throw BenchError("the memory backend has no bulk copy to compare with")
        }
    }

    private func pgcopydb(_ executable: String, _ cluster: ScratchCluster) async throws -> CopyReport.Baseline {
        let from = try await cluster.database(of: try ShardID("s1").orThrow("shard id")).orThrow("database of s1")
        let to = try await cluster.scratchDatabase(index: 2)
        let seconds = try RawCopy.pgcopydb(executable, from: from, to: to, table: benchTable, work: cluster.folder.path + "/pgcopydb")
        return .init(method: "pgcopydb clone", rows: rows, seconds: seconds)
    }
}
