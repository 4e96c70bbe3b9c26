import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import Prometheus
import ReshardAPI
import ReshardCore
import ReshardEngine

/// Builds the HTTP application: data routes, admin routes behind the bearer token, `/healthz`
/// and `/metrics`, with JSON errors and request metrics on every route.
public enum ReshardApplication {
    /// The route table, exposed separately so tests can drive it without a socket.
    public static func makeRouter(
        shardRouter: ShardRouter,
        configuration: ServerConfiguration,
        registry: PrometheusCollectorRegistry,
        migrations: MigrationManager? = nil
    ) -> Router<BasicRequestContext> {
        // HEAD is served wherever GET is, with the same status and headers and no body.
        let router = Router(options: .autoGenerateHeadEndpoints)
        // Middleware must be added before routes; the first added is the outermost, so metrics
        // see the final status of every response, including rendered errors.
        router.add(middleware: RequestMetricsMiddleware(factory: PrometheusMetricsFactory(registry: registry)))
        router.add(middleware: JSONErrorMiddleware(maxBodyBytes: configuration.maxBodyBytes))

        router.get("healthz") { _, _ -> Response in
            try jsonResponse(.ok, API.Health(generation: shardRouter.shardMap.generation))
        }
        let refresher = GaugeRefresher(router: shardRouter)
        let gauges = ServerMetrics(router: shardRouter, factory: PrometheusMetricsFactory(registry: registry))
        router.get("metrics") { _, _ -> Response in
            await refresher.refreshIfStale()
            gauges.refresh()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }

        router.get("openapi.yaml") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml + "\n")))
        }

        DashboardRoutes(source: DashboardSource(router: shardRouter, migrations: migrations)).register(on: router)
        let data = router.group("v1")
        if let dataToken = configuration.dataToken {
            data.add(middleware: BearerTokenMiddleware(dataToken: dataToken, adminToken: configuration.adminToken))
        }
        RowRoutes(router: shardRouter, maxBodyBytes: configuration.maxBodyBytes).register(
            on: data.group("").add(middleware: GenerationMiddleware(router: shardRouter)))
        EventRoutes(router: shardRouter, streams: EventStreams()).register(on: data)
        let admin = router.group("v1").add(middleware: BearerTokenMiddleware(token: configuration.adminToken))
        AdminRoutes(
            router: shardRouter, maxBodyBytes: configuration.maxBodyBytes, newShardLocation: configuration.newShardLocation
        ).register(on: admin)
        if let migrations {
            MigrationRoutes(manager: migrations, router: shardRouter, maxBodyBytes: configuration.maxBodyBytes).register(on: admin)
        }
        return router
    }

    /// The whole application, listening on `configuration.host:port`, over TLS when
    /// `configuration.tls` names the files (which must be readable PEM: a `TLSSetupError` says
    /// which is not).
    public static func make(
        shardRouter: ShardRouter,
        configuration: ServerConfiguration,
        registry: PrometheusCollectorRegistry,
        logger: Logger,
        migrations: MigrationManager? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let readTimeout = TimeAmount.microseconds(Int64(clamping: configuration.requestReadTimeout.wholeMicroseconds))
        let http1 = HTTPServerBuilder.http1(
            configuration: HTTP1Channel.Configuration(
                // Evaluated per connection: each gets its own handlers.
                additionalChannelHandlers: [ParserErrorBodyHandler(), RequestReadDeadlineHandler(timeout: readTimeout)],
                idleTimeout: .microseconds(Int64(clamping: configuration.idleTimeout.wholeMicroseconds)),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: configuration.maxHeaderBytes, maxHeaderListSize: configuration.maxHeaderBytes,
                    maxHeaderFieldCount: 200)
            ))
        return Application(
            router: makeRouter(shardRouter: shardRouter, configuration: configuration, registry: registry, migrations: migrations),
            server: try configuration.tls.map { try .tls(http1, tlsConfiguration: try TLSSetupError.configuration($0)) } ?? http1,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "reshard",
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections, logger: logger)),
            services: [ReplicationSlotSampler(router: shardRouter, factory: PrometheusMetricsFactory(registry: registry), logger: logger)],
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

/// Row counts per shard are a count over every table, too costly per scrape; refresh them at
/// most every few seconds.
actor GaugeRefresher {
    let router: ShardRouter
    private var last: ContinuousClock.Instant?
    private let interval: Duration = .seconds(5)

    init(router: ShardRouter) {
        self.router = router
    }

    func refreshIfStale() async {
        let now = ContinuousClock.now
        if let last, now - last < interval { return }
        last = now
        _ = try? await router.cluster()
    }
}
