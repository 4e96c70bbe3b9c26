import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the router and its HTTP API; with PostgreSQL metadata, one of several routers.",
        discussion: """
            Embedded default: on first start the data folder gets a metadata database, --shards SQLite shard files placed on a consistent-hash ring (256 virtual nodes each), and an admin token in <data>/admin-token (mode 0600). Later starts reuse what the folder holds; --shards is then ignored.

              reshard serve --data ./reshard-data --shards 4 --port 7420

            PostgreSQL: the metadata and the shards are databases, on as many servers as you like. Every router process names the same metadata; the first start also names the shards (later starts may name new ones to register them empty). Passwords come from PGPASSWORD, never from a URL. One process at a time runs the migrations (it holds a PostgreSQL advisory lock); when it dies, another takes over from the journals. Routers learn of new tables, shards, shard maps and cutover holds through LISTEN/NOTIFY, and re-read the metadata every --refresh-ms in case a notification was lost.

              reshard serve --metadata postgres://reshard@db1:5432/reshard_meta \\
                --shard s1=postgres://reshard@db1:5432/shard1 --shard s2=postgres://reshard@db2:5432/shard2 --port 7420
              reshard serve --config cluster.json     # {"metadata": "postgres://…", "shards": {"s1": "postgres://…"}}

            With --port 0 the system picks a free port; the "reshard is serving" line names it.
            For crash testing only, RESHARD_CRASH_AT=PHASE[:STEP][#N] makes the process kill itself with SIGKILL at that point of a migration (for example copying#3 or cutting_over:publish; a cutover STEP also matches a later step, since a step with nothing to do is passed at once).
            """
    )

    @Option(help: "The data folder (admin token, and SQLite metadata and shards unless told otherwise).")
    var data = "./reshard-data"

    @Option(help: "How many SQLite shards a new embedded data folder starts with (1…1024).")
    var shards = 4

    @Option(help: "The metadata: a postgres:// URL (shared by several routers) or a SQLite file (default <data>/meta.sqlite).")
    var metadata: String?

    @Option(name: .customLong("shard"), help: "A shard as ID=URL (postgres://… or sqlite:PATH); repeat for each shard.")
    var shardSpecs: [String] = []

    @Option(help: "A JSON config file: {\"metadata\": URL, \"shards\": {ID: URL}}; options given on the command line win.")
    var config: String?

    @Option(help: "This router's name among the routers (default: reshard-<pid>).")
    var name: String?

    @Option(name: .customLong("refresh-ms"), help: "How often the router re-reads the metadata, whatever notifications say.")
    var refreshMillis = 1_000

    @Flag(
        name: .customLong("no-notifications"),
        help: "Ignore LISTEN/NOTIFY and learn only by re-reading (for testing a router that misses them).")
    var noNotifications = false

    @Option(help: "The interface to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 7420

    @Option(name: .customLong("admin-token"), help: "The admin bearer token (default: $RESHARD_ADMIN_TOKEN, then <data>/admin-token).")
    var adminToken: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(
        name: .customLong("idle-timeout-ms"),
        help: "Close a connection idle this long, or one whose request head has not arrived in that time (100…3600000).")
    var idleTimeoutMillis = 60_000

    @Option(
        name: .customLong("request-timeout-ms"),
        help: "Drop a request (and close its connection) whose body has not arrived whole this long after its head (100…3600000).")
    var requestTimeoutMillis = 30_000

    @Option(name: .customLong("max-connections"), help: "Connections served at once; more wait to be accepted (1…65536).")
    var maxConnections = 1_024

    @Option(
        name: .customLong("shutdown-grace-ms"),
        help: "On SIGTERM or SIGINT, how long requests in flight may finish before they are cut (0…600000).")
    var shutdownGraceMillis = 10_000

    @Flag(
        name: .customLong("auto-rebalance"),
        help: "Start a load rebalance on its own when a shard stays hot (off by default; the migrator leader only).")
    var autoRebalance = false

    @Option(name: .customLong("auto-rebalance-signal"), help: "What auto-rebalance evens out: requests, bytes or time.")
    var autoRebalanceSignal = "requests"

    @Option(
        name: .customLong("auto-rebalance-gate"),
        help: "A gate every automatic rebalance waits at for an operator (e.g. before_cutover); repeat for several.")
    var autoRebalanceGates: [String] = []

    @Option(
        name: .customLong("webhook"),
        help: "An http:// URL every cluster event (map published, layout switched, cleanup) is POSTed to; repeat for several.")
    var webhooks: [String] = []

    func validate() throws {
        for url in webhooks where WebhookTarget(url) == nil {
            throw ValidationError("--webhook \(url.prefix(200)): an http://host[:port]/path URL, without user info or fragment")
        }
        guard LoadSignal(rawValue: autoRebalanceSignal) != nil else {
            throw ValidationError("--auto-rebalance-signal must be requests, bytes or time")
        }
        for gate in autoRebalanceGates where MigrationPhase(gate: gate) == nil {
            throw ValidationError(
                "unknown --auto-rebalance-gate \(gate); gates are \(MigrationPhase.gateable.map(\.gateName).joined(separator: ", "))")
        }
        guard (1...1024).contains(shards) else { throw ValidationError("--shards must be 1…1024") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard (50...600_000).contains(refreshMillis) else { throw ValidationError("--refresh-ms must be 50…600000") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard (100...3_600_000).contains(idleTimeoutMillis) else { throw ValidationError("--idle-timeout-ms must be 100…3600000") }
        guard (100...3_600_000).contains(requestTimeoutMillis) else {
            throw ValidationError("--request-timeout-ms must be 100…3600000")
        }
        guard (1...65_536).contains(maxConnections) else { throw ValidationError("--max-connections must be 1…65536") }
        guard (0...600_000).contains(shutdownGraceMillis) else { throw ValidationError("--shutdown-grace-ms must be 0…600000") }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw ValidationError("--host must be an address or a host name")
        }
        for spec in shardSpecs {
            do {
                _ = try ClusterConfiguration.shard(spec)
            } catch {
                throw ValidationError("--shard \(spec): \(error)")
            }
        }
    }

    /// The config file's settings under the command line's.
    func clusterConfiguration() throws -> ClusterConfiguration {
        var configuration = try config.map(ClusterConfiguration.file) ?? ClusterConfiguration()
        if let metadata { configuration.metadata = metadata }
        if !shardSpecs.isEmpty { configuration.shards = try shardSpecs.map(ClusterConfiguration.shard) }
        return configuration
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
        // Every file this process creates (shards, their WAL, metadata, the token) is its
        // owner's alone: they hold every row and the key to the admin routes.
        umask(0o077)
        let folder = DataFolder(path: data)
        try folder.prepare()
        if folder.isOpenToOthers {
            logger.warning("the data folder may be read by other users; run chmod 700 on it", metadata: ["folder": "\(data)"])
        }
        let token = try AdminToken.resolve(explicit: adminToken, file: folder.adminTokenPath, createIfMissing: true)
        try AdminToken.check(token, host: host)
        if !AdminToken.isLoopback(host) {
            logger.warning(
                "listening beyond loopback: the data API needs no token, and traffic is plain HTTP (put TLS in front)",
                metadata: ["host": "\(host)"])
        }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = MetricsBuckets.latency
        MetricsSystem.bootstrap(factory)
        let routerName = name ?? "reshard-\(ProcessInfo.processInfo.processIdentifier)"
        let cluster: OpenedCluster
        do {
            cluster = try await OpenedCluster.open(
                try clusterConfiguration(), folder: folder, embeddedShards: shards, routerName: routerName, metricsFactory: factory,
                logger: logger)
        } catch let error as ClusterError {
            throw CLIError(error.description)
        }
        switch cluster.outcome {
        case .created(let count): logger.info("created a new cluster", metadata: ["shards": "\(count)", "router": "\(routerName)"])
        case .existing(let generation, let count):
            logger.info(
                "opened the cluster", metadata: ["shards": "\(count)", "generation": "\(generation)", "router": "\(routerName)"])
        }
        let newShardLocation: @Sendable (ShardID) -> ShardLocation = { .sqlite(path: folder.relativeShardPath($0)) }
        let configuration = ServerConfiguration(
            host: host, port: port, adminToken: token, newShardLocation: newShardLocation, idleTimeout: .milliseconds(idleTimeoutMillis),
            requestReadTimeout: .milliseconds(requestTimeoutMillis), maxConnections: maxConnections)
        let migrations = MigrationManager(router: cluster.router, metadata: cluster.metadata, logger: logger, hook: crashPoint?.hook)
        let app = ReshardApplication.make(
            shardRouter: cluster.router, configuration: configuration, registry: registry, logger: logger, migrations: migrations
        ) { channel in
            let bound = channel.localAddress?.port ?? port
            logger.info(
                "reshard is serving",
                metadata: ["address": "http://\(host):\(bound)", "admin_token_file": "\(folder.adminTokenPath)", "router": "\(routerName)"])
        }
        let router = cluster.router
        let metadata = cluster.metadata
        let refresh = Duration.milliseconds(refreshMillis)
        let notifications = !noNotifications
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Routers follow the metadata; whichever process holds the lease runs the migrations
            // (journaled ones continue from their checkpoints).
            group.addTask { await router.follow(every: refresh, notifications: notifications) }
            group.addTask { await migrations.lead(metadata.leadership("migrator")) }
            if !webhooks.isEmpty {
                let dispatcher = WebhookDispatcher(
                    targets: webhooks.compactMap(WebhookTarget.init), router: router, metadata: metadata,
                    isLeader: { migrations.isLeader }, logger: logger)
                group.addTask { await dispatcher.run() }
            }
            if autoRebalance {
                var settings = MigrationSettings()
                settings.gates = Set(autoRebalanceGates.compactMap { MigrationPhase(gate: $0) })
                let policy = AutoRebalancePolicy(rules: HotSpotRules(signal: LoadSignal(rawValue: autoRebalanceSignal) ?? .requests))
                logger.notice("auto-rebalance is on", metadata: ["signal": "\(autoRebalanceSignal)", "gates": "\(autoRebalanceGates)"])
                group.addTask { await migrations.autoRebalance(policy, settings: settings) }
            }
            group.addTask {
                // A graceful shutdown waits for requests in flight, but never forever: past the
                // grace they are cancelled (a client holding a body open cannot stall SIGTERM).
                var service = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                service.maximumGracefulShutdownDuration = .milliseconds(shutdownGraceMillis)
                try await ServiceGroup(configuration: service).run()
            }
            try await group.next()
            group.cancelAll()
        }
        await metadata.close()
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
