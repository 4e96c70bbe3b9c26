import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the router and its HTTP API over SQLite shards in a data folder.",
        discussion: """
            On first start the data folder gets a metadata database, --shards SQLite shard files placed on a consistent-hash ring (256 virtual nodes each), and an admin token in <data>/admin-token (mode 0600). Later starts reuse what the folder holds; --shards is then ignored.

            Example:
              reshard serve --data ./reshard-data --shards 4 --port 7420
              curl localhost:7420/healthz

            With --port 0 the system picks a free port; the "reshard is serving" line names it.
            For crash testing only, RESHARD_CRASH_AT=PHASE[:STEP][#N] makes the process kill itself with SIGKILL at that point of a migration (for example copying#3 or cutting_over:publish).
            """
    )

    @Option(help: "The data folder.")
    var data = "./reshard-data"

    @Option(help: "How many SQLite shards a new data folder starts with (1…1024).")
    var shards = 4

    @Option(help: "The interface to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 7420

    @Option(name: .customLong("admin-token"), help: "The admin bearer token (default: $RESHARD_ADMIN_TOKEN, then <data>/admin-token).")
    var adminToken: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (1...1024).contains(shards) else { throw ValidationError("--shards must be 1…1024") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        var crashPoint: CrashPoint?
        if let spec = ProcessInfo.processInfo.environment["RESHARD_CRASH_AT"] {
            guard let point = CrashPoint(spec) else {
                throw ValidationError("RESHARD_CRASH_AT must be PHASE[:STEP][#N], for example copying#3; got \(spec)")
            }
            crashPoint = point
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "reshard")
        let folder = DataFolder(path: data)
        try folder.prepare()
        let token = try AdminToken.resolve(explicit: adminToken, file: folder.adminTokenPath, createIfMissing: true)
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = MetricsBuckets.latency
        MetricsSystem.bootstrap(factory)
        let cluster = try await EmbeddedCluster.open(folder: folder, shards: shards, metricsFactory: factory, logger: logger)

        switch cluster.outcome {
        case .created(let count): logger.info("created a new cluster", metadata: ["shards": "\(count)", "data": "\(data)"])
        case .existing(let generation, let count):
            logger.info("opened the cluster", metadata: ["shards": "\(count)", "generation": "\(generation)", "data": "\(data)"])
        }
        let configuration = ServerConfiguration(host: host, port: port, adminToken: token, newShardLocation: cluster.newShardLocation)
        // Migrations journaled by an earlier process (a crash, a restart) continue from their checkpoints.
        let migrations = MigrationManager(router: cluster.router, metadata: cluster.metadata, logger: logger, hook: crashPoint?.hook)
        try await migrations.resumeAll()
        let app = ReshardApplication.make(
            shardRouter: cluster.router, configuration: configuration, registry: registry, logger: logger, migrations: migrations
        ) { channel in
            let bound = channel.localAddress?.port ?? port
            logger.info(
                "reshard is serving",
                metadata: ["address": "http://\(host):\(bound)", "admin_token_file": "\(folder.adminTokenPath)"])
        }
        try await app.runService()
    }
}

enum MetricsBuckets {
    /// Sub-millisecond resolution: router operations on local shards take tens of microseconds.
    static let latency: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]
}
