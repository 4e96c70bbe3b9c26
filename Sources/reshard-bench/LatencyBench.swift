import ArgumentParser
import Foundation
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// Foreground latency during a migration: clients read and write through the router at a
/// steady rate while shard s5 is added to four shards; every request's latency is filed under
/// the phase it ran in (before, copy, catch-up, cutover, after), with the throttle's latency
/// signal on and off. Draws latency over time with the phases marked (SVG).
struct LatencyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Client p99 before, during copy, catch-up, cutover and after a live add-shard, throttled and not, with an SVG chart.",
        discussion: """
            Defaults: 300,000 rows (50,000 with --quick), 600 requests/s, 8 s of settling (3 with --quick).

            Example:
              swift run -c release reshard-bench latency --rows 300000 --rate 600
            """
    )

    @OptionGroup var options: BenchOptions

    @OptionGroup var load: MigrationLoadOptions

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(
            environment: environment, rows: load.rows ?? (options.quick ? 50_000 : 300_000), rate: load.rate ?? 600,
            settle: load.settleSeconds ?? (options.quick ? 3 : 8), out: options.out
        ).present(out: options.out)
    }

    /// Every backend's figures, throttle off and on; draws each backend's chart into `out`.
    static func measure(environment: BenchEnvironment, rows: Int, rate: Int, settle: Int, out: String) async throws
        -> BenchFile<LatencyReport>
    {
        let charts = environment.backends.map { "\(out)/latency-\($0.rawValue)-latest.svg" }
        return try await BenchFile.measure("latency", environment, files: charts) { backend in
            var runs: [LatencyReport.Run] = []
            for throttled in [false, true] {
                let scenario = LatencyScenario(
                    backend: backend, servers: environment.servers, rows: rows, rate: rate, settle: .seconds(settle), throttled: throttled)
                runs.append(try await scenario.measure())
            }
            let report = LatencyReport(backend: backend.rawValue, rows: rows, rate: rate, runs: runs)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let chart = "\(out)/latency-\(backend.rawValue)-latest.svg"
            try LatencyChart.svg(report).write(toFile: chart, atomically: true, encoding: .utf8)
            return report
        }
    }
}

struct LatencyScenario {
    let backend: ShardBackend
    let servers: [PostgresEndpoint]
    let rows: Int
    let rate: Int
    let settle: Duration
    let throttled: Bool

    func measure() async throws -> LatencyReport.Run {
        try await withBenchCluster("latency", backend: backend, shards: 4, servers: servers) { cluster, manager in
            let mode = throttled ? "throttle on" : "throttle off"
            say("latency, \(backend.rawValue), \(mode): loading \(grouped(rows)) rows …")
            _ = try await BenchData.load(cluster, table: benchTable, rows: rows)
            let newcomer = try await cluster.addShard(index: 5)
            let run = try await BenchMigration.underLoad(
                cluster, manager, .addShard(newcomer), settings: BenchMigration.settings(latencyFactor: throttled ? 1.2 : nil),
                keys: rows, rate: rate, settle: settle, label: "add s5, \(mode)", onLoad: { PeakMemory.reset() })
            return LatencyReport.Run(
                throttled: throttled, samples: run.samples, origin: run.origin, begin: run.begin, end: run.end,
                spans: BenchMigration.spans(run.outcome.status.machine, now: run.end), throttleReasons: run.outcome.throttleReasons,
                peakMemoryBytes: PeakMemory.peakBytes)
        }
    }
}
