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
            Example:
              swift run -c release reshard-bench latency --rows 300000 --rate 600
            """
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Rows on the four shards before the add; default 300,000, or 50,000 with --quick.")
    var rows: Int?

    @Option(help: "Client requests per second (70 % reads, 30 % writes).")
    var rate = 600

    @Option(help: "Seconds of load before the migration and after it; default 8, or 3 with --quick.")
    var settleSeconds: Int?

    func validate() throws {
        if let rows, !(1_000...10_000_000).contains(rows) { throw ValidationError("--rows must be 1,000…10,000,000") }
        guard (10...20_000).contains(rate) else { throw ValidationError("--rate must be 10…20,000") }
        if let settleSeconds, !(1...600).contains(settleSeconds) { throw ValidationError("--settle-seconds must be 1…600") }
    }

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(
            environment: environment, rows: rows ?? (options.quick ? 50_000 : 300_000), rate: rate,
            settle: settleSeconds ?? (options.quick ? 3 : 8), out: options.out
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
