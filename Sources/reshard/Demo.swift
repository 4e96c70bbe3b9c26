import ArgumentParser
import Foundation
import Logging
import Prometheus
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore
import ServiceLifecycle

/// Reshard's main job on the embedded default, end to end: a live add-shard under load, shown
/// as it happens, then proven.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a fifth shard live under a read/write/delete workload, then check every acknowledged write.",
        discussion: """
            In a temporary folder: 4 SQLite shards and the router on 127.0.0.1, --rows rows loaded, --clients HTTP clients reading (60 %), writing (30 %) and deleting (10 %) at --rate requests per second in all. After a baseline, shard s5 is added live while the progress is shown; after the migration the workload runs a little longer, stops, and every acknowledged write and delete is read back. The report gives rows moved against the ideal 1/5, the write pause at cutover, the clients' p99 before, during and after, the errors, and the verdict. Exits non-zero when the verdict is FAIL.

            With --change-shard-key the migration is a shard-key change instead: the table, placed by its primary key, is placed by the rows' customer field (which the workload's updates change) while the clients keep reading, writing and deleting by primary key; the check also proves every live row sits on the shard its customer names.

            Example:
              swift run -c release reshard demo
              swift run -c release reshard demo --change-shard-key
              swift run -c release reshard demo --rows 20000 --rate 500 --json demo.json
            """
    )

    @Option(help: "Rows loaded before the workload starts.")
    var rows = 100_000

    @Option(help: "HTTP client connections.")
    var clients = 4

    @Option(help: "Requests per second over all clients.")
    var rate = 1_000

    @Option(help: "Seconds of workload before the migration (the latency baseline) and again after it.")
    var settleSeconds = 5

    @Option(help: "Seconds the old owners stay current after the switch before cleanup.")
    var bakeSeconds = 3

    @Option(help: "How the data moves: cdc_backfill (the default), dual_write or traffic_replay (README, \"Strategies\").")
    var strategy = MigrationStrategy.cdcBackfill.rawValue

    @Flag(
        help:
            "Instead of adding a shard, change the table's shard key live from id to customer (a field the workload's updates change).")
    var changeShardKey = false

    @Option(help: "Also write the report as JSON to this file.")
    var json: String?

    @Flag(help: "Keep the temporary data folder instead of deleting it.")
    var keep = false

    func validate() throws {
        guard (1_000...10_000_000).contains(rows) else { throw ValidationError("--rows must be 1,000…10,000,000") }
        guard (1...64).contains(clients) else { throw ValidationError("--clients must be 1…64") }
        guard (1...100_000).contains(rate) else { throw ValidationError("--rate must be 1…100,000") }
        guard (1...600).contains(settleSeconds) else { throw ValidationError("--settle-seconds must be 1…600") }
        guard (0...3_600).contains(bakeSeconds) else { throw ValidationError("--bake-seconds must be 0…3,600") }
        let available = MigrationStrategy.allCases.filter(\.isAvailable).map(\.rawValue)
        guard let chosen = MigrationStrategy(rawValue: strategy), chosen.isAvailable else {
            throw ValidationError("--strategy must be one of \(available.joined(separator: ", "))")
        }
        if changeShardKey && chosen != .cdcBackfill {
            throw ValidationError("--change-shard-key copies and catches up: --strategy must be cdc_backfill")
        }
    }

    func run() async throws {
        var logger = Logger(label: "reshard-demo")
        logger.logLevel = .warning
        let registry = PrometheusCollectorRegistry()
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-demo", shards: 4, metricsFactory: PrometheusMetricsFactory(registry: registry), logger: logger)
        defer { if !keep { cluster.remove() } }
        let router = cluster.router
        let token = try AdminToken.resolve(explicit: nil, file: cluster.folder.adminTokenPath, createIfMissing: true)
        _ = try await router.createTable(name: DemoRun.tableName, primaryKey: "id", shardKey: "id")
        say("Reshard demo: 4 SQLite shards in \(cluster.folder.path)")

        let loadStart = ContinuousClock.now
        let loaded = try await DemoLoader(router: router, rows: rows).load()
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        say(
            "loaded \(Self.count(rows)) rows in \(String(format: "%.1f", loadSeconds)) s (\(Self.count(Int(Double(rows) / loadSeconds))) rows/s)"
        )

        let migrations = MigrationManager(router: router, metadata: cluster.metadata, logger: logger)
        let configuration = ServerConfiguration(port: 0, adminToken: token, newShardLocation: cluster.newShardLocation)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try ReshardApplication.make(
            shardRouter: router, configuration: configuration, registry: registry, logger: logger, migrations: migrations
        ) { portContinuation.yield($0.localAddress?.port ?? 0) }
        let server = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let serverTask = Task { try await server.run() }
        var port = 0
        for await bound in ports {
            port = bound
            break
        }
        say("router and dashboard on http://127.0.0.1:\(port) (open it in a browser); to watch from another terminal:")
        say("  reshard migrate status --watch --url http://127.0.0.1:\(port) --data \(cluster.folder.path)")

        let workload = DemoWorkload(port: port, clients: clients, keys: rows + rows / 10, opsPerSecond: rate)
        let clientsTask = Task { try await workload.run() }
        let run = DemoRun(
            router: router, migrations: migrations, workload: workload, settle: .seconds(settleSeconds),
            newShardLocation: cluster.newShardLocation)
        let migration = await Self.outcome {
            try await run.migrate(
                bakeMillis: UInt64(bakeSeconds) * 1_000, strategy: MigrationStrategy(rawValue: strategy), changeShardKey: changeShardKey)
        }
        workload.stop()
        let results = await Self.outcome { try await clientsTask.value }
        await server.triggerGracefulShutdown()
        _ = try? await serverTask.value

        say("checking every acknowledged write and delete …")
        let check = try await DemoCheck(router: router, loaded: loaded, clients: results.value ?? []).run()
        let report = DemoReport(
            rows: rows, clients: clients, rate: rate, migration: migration, results: results, check: check)
        say("")
        say(report.text)
        if let json { try report.write(json: json) }
        if keep { say("\nthe data folder stays at \(cluster.folder.path)") }
        if !report.passed { throw ExitCode.failure }
    }

    /// A step's result, or its error as text for the report.
    static func outcome<T: Sendable>(_ body: () async throws -> T) async -> DemoOutcome<T> {
        do { return DemoOutcome(value: try await body(), error: nil) } catch { return DemoOutcome(value: nil, error: "\(error)") }
    }

    static func count(_ value: Int) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.groupingSeparator = ","
        return formatter.string(from: NSNumber(value: value)) ?? String(value)
    }
}

struct DemoOutcome<T: Sendable>: Sendable {
    let value: T?
    let error: String?
}
