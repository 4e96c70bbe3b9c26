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

    @Option(help: "The data folder (admin token, and SQLite metadata and shards unless told otherwise; default ./reshard-data).")
    var data: String?

    @Option(help: "How many SQLite shards a new embedded data folder starts with (1…1024; default 4).")
    var shards: Int?

    @Option(help: "The metadata: a postgres:// URL (shared by several routers) or a SQLite file (default <data>/meta.sqlite).")
    var metadata: String?

    @Option(name: .customLong("shard"), help: "A shard as ID=URL (postgres://… or sqlite:PATH); repeat for each shard.")
    var shardSpecs: [String] = []

    @Option(help: "A JSON config file of settings (default $RESHARD_CONFIG); flags and RESHARD_… variables win over it.")
    var config: String?

    @Option(help: "This router's name among the routers (default: reshard-<pid>).")
    var name: String?

    @Option(name: .customLong("refresh-ms"), help: "How often the router re-reads the metadata, whatever notifications say (default 1000).")
    var refreshMillis: Int?

    @Flag(inversion: .prefixedNo, help: "Follow LISTEN/NOTIFY (--no-notifications: learn only by re-reading, for testing).")
    var notifications: Bool?

    @Option(help: "The interface to listen on (default 127.0.0.1).")
    var host: String?

    @Option(help: "The port to listen on (default 7420; 0 picks one).")
    var port: Int?

    @Option(name: .customLong("admin-token"), help: "The admin bearer token (default: $RESHARD_ADMIN_TOKEN, then <data>/admin-token).")
    var adminToken: String?

    @Option(name: .customLong("data-token"), help: "A bearer token the data routes then require (default: none, open).")
    var dataToken: String?

    @Option(name: .customLong("tls-cert-file"), help: "A PEM certificate chain; with --tls-key-file the server speaks HTTPS only.")
    var tlsCertFile: String?

    @Option(name: .customLong("tls-key-file"), help: "The PEM private key of --tls-cert-file.")
    var tlsKeyFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(
        name: .customLong("idle-timeout-ms"),
        help: "Close a connection idle this long, or one whose request head has not arrived in that time (100…3600000; default 60000).")
    var idleTimeoutMillis: Int?

    @Option(
        name: .customLong("request-timeout-ms"),
        help: "Drop a request (and close its connection) whose body has not arrived whole this long after its head (default 30000).")
    var requestTimeoutMillis: Int?

    @Option(name: .customLong("max-connections"), help: "Connections served at once; more wait to be accepted (1…65536; default 1024).")
    var maxConnections: Int?

    @Option(
        name: .customLong("shutdown-grace-ms"),
        help: "On SIGTERM or SIGINT, how long requests in flight may finish before they are cut (0…600000; default 10000).")
    var shutdownGraceMillis: Int?

    @Flag(
        inversion: .prefixedNo,
        help: "Start a load rebalance on its own when a shard stays hot (off by default; the migrator leader only).")
    var autoRebalance: Bool?

    @Option(name: .customLong("auto-rebalance-signal"), help: "What auto-rebalance evens out: requests, bytes or time.")
    var autoRebalanceSignal: String?

    @Option(
        name: .customLong("auto-rebalance-gate"),
        help: "A gate every automatic rebalance waits at for an operator (e.g. before_cutover); repeat for several.")
    var autoRebalanceGates: [String] = []

    @Option(
        name: .customLong("webhook"),
        help: "An http:// URL every cluster event (map published, layout switched, cleanup) is POSTed to; repeat for several.")
    var webhooks: [String] = []

    /// The settings the command line gives, by config-file member.
    var flagValues: [String: ServeSettings.Value] {
        var values: [String: ServeSettings.Value] = [:]
        let strings: [(String, String?)] = [
            ("data", data), ("metadata", metadata), ("name", name), ("host", host), ("admin_token", adminToken),
            ("data_token", dataToken), ("tls_cert_file", tlsCertFile), ("tls_key_file", tlsKeyFile), ("log_level", logLevel),
            ("auto_rebalance_signal", autoRebalanceSignal),
        ]
        for case (let key, let value?) in strings { values[key] = .string(value) }
        let ints: [(String, Int?)] = [
            ("embedded_shards", shards), ("refresh_ms", refreshMillis), ("port", port), ("idle_timeout_ms", idleTimeoutMillis),
            ("request_timeout_ms", requestTimeoutMillis), ("max_connections", maxConnections), ("shutdown_grace_ms", shutdownGraceMillis),
        ]
        for case (let key, let value?) in ints { values[key] = .int(value) }
        for case (let key, let value?) in [("notifications", notifications), ("auto_rebalance", autoRebalance)] {
            values[key] = .bool(value)
        }
        for (key, list) in [("shards", shardSpecs), ("auto_rebalance_gates", autoRebalanceGates), ("webhooks", webhooks)]
        where !list.isEmpty {
            values[key] = .list(list)
        }
        return values
    }

    /// Flags, then the environment, then the config file, then defaults.
    func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServeSettings {
        do {
            let file = try (config ?? environment["RESHARD_CONFIG"]).map(ServeSettings.file) ?? [:]
            return try ServeSettings.resolve(flags: flagValues, environment: environment, file: file).0
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        }
    }

    func validate() throws {
        _ = try settings()
    }

    func run() async throws {
        var crashPoint: CrashPoint?
        if let spec = ProcessInfo.processInfo.environment["RESHARD_CRASH_AT"] {
            guard let point = CrashPoint(spec) else {
                throw ValidationError("RESHARD_CRASH_AT must be PHASE[:STEP][#N], for example copying#3; got \(spec)")
            }
            crashPoint = point
        }
        let settings = try settings()
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "reshard")
        // Every file this process creates (shards, their WAL, metadata, the token) is its
        // owner's alone: they hold every row and the key to the admin routes.
        umask(0o077)
        let folder = DataFolder(path: settings.data)
        try folder.prepare()
        if folder.isOpenToOthers {
            logger.warning("the data folder may be read by other users; run chmod 700 on it", metadata: ["folder": "\(settings.data)"])
        }
        let token = try AdminToken.resolve(explicit: settings.adminToken, file: folder.adminTokenPath, createIfMissing: true)
        let host = settings.host
        try AdminToken.check(token, host: host)
        if !AdminToken.isLoopback(host) && (settings.dataToken == nil || settings.tlsCertFile == nil) {
            logger.warning(
                "listening beyond loopback without \(settings.dataToken == nil ? "a data token" : "TLS"): set data_token and tls_cert_file/tls_key_file, or put TLS in front",
                metadata: ["host": "\(host)"])
        }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = MetricsBuckets.latency
        MetricsSystem.bootstrap(factory)
        let routerName = settings.name ?? "reshard-\(ProcessInfo.processInfo.processIdentifier)"
        let cluster: OpenedCluster
        do {
            cluster = try await OpenedCluster.open(
                ClusterConfiguration(metadata: settings.metadata, shards: try settings.shards.map(ClusterConfiguration.shard)),
                folder: folder,
                embeddedShards: settings.embeddedShards, routerName: routerName, metricsFactory: factory,
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
            host: host, port: settings.port, adminToken: token, newShardLocation: newShardLocation,
            idleTimeout: .milliseconds(settings.idleTimeoutMillis), requestReadTimeout: .milliseconds(settings.requestTimeoutMillis),
            maxConnections: settings.maxConnections, dataToken: settings.dataToken,
            tls: settings.tlsCertFile.map { ServerConfiguration.TLSFiles(certificateChain: $0, privateKey: settings.tlsKeyFile ?? "") })
        let migrations = MigrationManager(router: cluster.router, metadata: cluster.metadata, logger: logger, hook: crashPoint?.hook)
        let scheme = configuration.tls == nil ? "http" : "https"
        let port = settings.port
        let app: any Service
        do {
            app = try ReshardApplication.make(
                shardRouter: cluster.router, configuration: configuration, registry: registry, logger: logger, migrations: migrations
            ) { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info(
                    "reshard is serving",
                    metadata: [
                        "address": "\(scheme)://\(host):\(bound)", "admin_token_file": "\(folder.adminTokenPath)",
                        "router": "\(routerName)",
                    ])
            }
        } catch let error as TLSSetupError {
            throw CLIError(error.description)
        }
        let router = cluster.router
        let metadata = cluster.metadata
        let refresh = Duration.milliseconds(settings.refreshMillis)
        let notifications = settings.notifications
        let webhooks = settings.webhooks
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
            if settings.autoRebalance {
                var rebalance = MigrationSettings()
                rebalance.gates = Set(settings.autoRebalanceGates.compactMap { MigrationPhase(gate: $0) })
                let signal = settings.autoRebalanceSignal
                let policy = AutoRebalancePolicy(rules: HotSpotRules(signal: LoadSignal(rawValue: signal) ?? .requests))
                logger.notice("auto-rebalance is on", metadata: ["signal": "\(signal)", "gates": "\(settings.autoRebalanceGates)"])
                group.addTask { await migrations.autoRebalance(policy, settings: rebalance) }
            }
            group.addTask {
                // A graceful shutdown waits for requests in flight, but never forever: past the
                // grace they are cancelled (a client holding a body open cannot stall SIGTERM).
                var service = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                service.maximumGracefulShutdownDuration = .milliseconds(settings.shutdownGraceMillis)
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
