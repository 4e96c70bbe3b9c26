import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ReshardClient
import ReshardEngine
import ReshardServer
import ReshardStore
import ServiceLifecycle

/// Router overhead: the same GET and PUT requests over loopback HTTP to Reshard's row routes
/// and to a bare Hummingbird route with a fixed body, in one run, so the ratio holds on a noisy
/// machine. Servers and load generator share the process (and its 2 cores here); the figures
/// are for comparison in the same run, not absolute capacity.
struct RouterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Router throughput and latency (p50/p99/p999) against a bare Hummingbird route.",
        discussion: """
            Preloads --rows rows into 4 SQLite shards in a temporary folder, starts the router and a bare route on 127.0.0.1 (free ports), then sends --requests requests per scenario (GET and PUT, each at every --connections level) to both.

            Example:
              swift run -c release reshard bench router --connections 1,16 --requests 20000
            """
    )

    @Option(help: "Comma-separated client connection counts.")
    var connections = "1,16,64"

    @Option(help: "Requests per scenario (split over the connections).")
    var requests = 20_000

    @Option(help: "Rows preloaded before measuring.")
    var rows = 10_000

    @Option(help: "Where the JSON result goes.")
    var out = "benchmarks/results"

    func validate() throws {
        guard levels.count > 0, levels.allSatisfy({ (1...512).contains($0) }) else {
            throw ValidationError("--connections takes numbers 1…512, comma-separated")
        }
        guard (100...10_000_000).contains(requests) else { throw ValidationError("--requests must be 100…10,000,000") }
        guard (1...10_000_000).contains(rows) else { throw ValidationError("--rows must be 1…10,000,000") }
    }

    var levels: [Int] { connections.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() async throws {
        var logger = Logger(label: "reshard-bench")
        logger.logLevel = .warning
        let registry = PrometheusCollectorRegistry()
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-bench", shards: 4, metricsFactory: PrometheusMetricsFactory(registry: registry), logger: logger)
        defer { cluster.remove() }
        let router = cluster.router
        _ = try await router.createTable(name: "bench", primaryKey: "id", shardKey: "id")
        print("preloading \(rows) rows …")
        try await preload(router)

        let configuration = ServerConfiguration(port: 0, adminToken: UUID().uuidString, newShardLocation: cluster.newShardLocation)
        let (ports, portsContinuation) = AsyncStream.makeStream(of: (String, Int).self)
        let reshardApp = ReshardApplication.make(shardRouter: router, configuration: configuration, registry: registry, logger: logger) {
            portsContinuation.yield(("reshard", $0.localAddress?.port ?? 0))
        }
        let bareApp = Application(
            router: Self.bareRouter(),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portsContinuation.yield(("bare", $0.localAddress?.port ?? 0)) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [reshardApp, bareApp], gracefulShutdownSignals: [], logger: logger))
        let results = try await withThrowingTaskGroup(of: [Scenario.Result].self) { tasks in
            tasks.addTask {
                try await group.run()
                return []
            }
            var bound: [String: Int] = [:]
            for await (name, port) in ports {
                bound[name] = port
                if bound.count == 2 { break }
            }
            let measured = try await measureAll(reshardPort: bound["reshard"] ?? 0, barePort: bound["bare"] ?? 0)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return measured
        }
        let report = RouterBenchReport(results: results, rows: rows, requests: requests)
        print(report.markdown)
        let path = try report.write(to: out)
        print("\nwrote \(path)")
    }

    private func preload(_ router: ShardRouter) async throws {
        let perTask = (rows + 7) / 8
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in stride(from: task * perTask, to: min(rows, (task + 1) * perTask), by: 1) {
                        _ = try await router.put(table: "bench", pk: "k\(i)", body: Array(Self.rowBody(i).utf8))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func measureAll(reshardPort: Int, barePort: Int) async throws -> [Scenario.Result] {
        var results: [Scenario.Result] = []
        for level in levels {
            for operation in [Scenario.Operation.get, .put] {
                // Interleave targets per scenario so drift on the machine hits both alike.
                for (target, port, prefix) in [("bare", barePort, "/bare"), ("reshard", reshardPort, "")] {
                    let scenario = Scenario(
                        target: target, operation: operation, connections: level, requests: requests, rows: rows, port: port,
                        pathPrefix: prefix)
                    let result = try await scenario.run()
                    print(result.line)
                    results.append(result)
                }
            }
        }
        return results
    }

    static func rowBody(_ i: Int) -> String { "{\"n\":\(i),\"payload\":\"reshard-benchmark-row\"}" }

    /// The baseline: the same paths, answered with a fixed body and no storage.
    static func bareRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let fixed = ByteBuffer(string: #"{"pk":"k","version":1,"shard":"s1","row":{"n":1}}"#)
        router.get("bare/v1/tables/:table/rows/:pk") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: fixed))
        }
        router.put("bare/v1/tables/:table/rows/:pk") { request, _ in
            _ = try await request.body.collect(upTo: 1 << 20)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: fixed))
        }
        return router
    }
}
