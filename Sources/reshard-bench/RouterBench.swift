import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ReshardClient
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore
import ReshardTestKit
import ServiceLifecycle

/// Router overhead: the same GET and PUT requests over loopback HTTP to Reshard's row routes,
/// to a bare Hummingbird route with a fixed body, and as direct calls to the owning store in
/// process, in one run, so the ratios hold on a noisy machine. Servers and load generator share
/// the process (and its cores); the figures are for comparison in the same run, not capacity.
struct RouterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Router throughput and latency (p50/p99/p999) against a bare Hummingbird route and direct store calls.",
        discussion: """
            Per backend: preloads --rows rows into 4 shards, starts the router and a bare route on 127.0.0.1 (free ports), then runs --requests requests per scenario (GET and PUT, each at every --connections level) against the bare route, the router, and the owning store called in process.

            Example:
              swift run -c release reshard-bench router --connections 1,16 --requests 20000
            """
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Comma-separated client connection counts.")
    var connections = "1,16,64"

    @Option(help: "Requests per scenario (split over the connections); default 20,000, or 5,000 with --quick.")
    var requests: Int?

    @Option(help: "Rows preloaded before measuring.")
    var rows = 10_000

    func validate() throws {
        guard levels.count > 0, levels.allSatisfy({ (1...512).contains($0) }) else {
            throw ValidationError("--connections takes numbers 1…512, comma-separated")
        }
        if let requests, !(100...10_000_000).contains(requests) { throw ValidationError("--requests must be 100…10,000,000") }
        guard (1...10_000_000).contains(rows) else { throw ValidationError("--rows must be 1…10,000,000") }
    }

    var levels: [Int] { connections.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(environment: environment, levels: levels, requests: requests ?? (options.quick ? 5_000 : 20_000), rows: rows)
            .present(out: options.out)
    }

    static func measure(environment: BenchEnvironment, levels: [Int], requests: Int, rows: Int) async throws -> RouterBenchReport {
        var results: [Scenario.Result] = []
        var peaks: [String: Int] = [:]
        var ceiling: PgbenchCeiling?
        for backend in environment.backends {
            try await withBenchCluster("router", backend: backend, shards: 4, servers: environment.servers) { cluster, manager in
                say("router, \(backend.rawValue): preloading \(grouped(rows)) rows …")
                _ = try await BenchData.load(cluster, table: benchTable, rows: rows)
                let server = try await LoopbackServer.reshard(cluster, migrations: manager)
                let bare = try await BareServer.start()
                let bareStore = try await BareStoreServer.start(cluster)
                PeakMemory.reset()
                do {
                    results += try await measureAll(
                        backend: backend.rawValue, levels: levels, requests: requests, rows: rows,
                        targets: [
                            ("direct", { try Self.directClient(cluster) }),
                            ("engine", { Self.engineClient(cluster) }),
                            ("bare", { try await .http(port: bare.port, prefix: "/bare") }),
                            ("bare_store", { try await .http(port: bareStore.port, prefix: "/store") }),
                            ("reshard", { try await .http(port: server.port, prefix: "") }),
                        ])
                } catch {
                    for running in [bare, bareStore, server] { await running.stop() }
                    throw error
                }
                peaks[backend.rawValue] = PeakMemory.peakBytes
                for running in [bare, bareStore, server] { await running.stop() }
                if backend == .postgres { ceiling = try PgbenchCeiling.measure(cluster, rows: rows) }
            }
        }
        return RouterBenchReport(
            results: results, rows: rows, requests: requests, peakMemoryBytes: peaks, pgbench: ceiling, skipped: environment.skipped)
    }

    /// Calls the owning shard's store in process, as the router does after parsing a request.
    static func directClient(_ cluster: ScratchCluster) throws -> Scenario.Client {
        let map = cluster.router.shardMap
        let table = try TableName(benchTable).orThrow("table name")
        var stores: [ShardID: any ShardStore] = [:]
        for shard in map.shards { stores[shard] = try cluster.router.store(shard).orThrow("store \(shard)") }
        let owners = stores
        return Scenario.Client(
            send: { operation, key in
                let pk = "k\(key)"
                guard let store = owners[map.owner(of: KeyHash.of(pk))] else { return false }
                switch operation {
                case .get:
                    return try await store.read(table: table, pk: pk, shardKey: pk).value != nil
                case .put:
                    let body = String(decoding: BenchLoad.body(key, step: 1), as: UTF8.self)
                    let write = ClientWrite(
                        table: table, pk: pk, shardKey: pk, body: body, proposedVersion: HybridLogicalClock.timestamp(millis: wallMillis()),
                        generation: map.generation)
                    _ = try await store.write(write)
                    return true
                }
            }, close: {})
    }

    /// Calls the router's engine in process (routing, gate, fences, load statistics, metrics;
    /// no HTTP): with `direct`, what the engine costs; with `bare_store`, what HTTP costs.
    static func engineClient(_ cluster: ScratchCluster) -> Scenario.Client {
        let router = cluster.router
        return Scenario.Client(
            send: { operation, key in
                let pk = "k\(key)"
                switch operation {
                case .get:
                    _ = try await router.get(table: benchTable, pk: pk, shardKey: nil)
                    return true
                case .put:
                    _ = try await router.put(table: benchTable, pk: pk, body: BenchLoad.body(key, step: 1))
                    return true
                }
            }, close: {})
    }

    private static func measureAll(
        backend: String, levels: [Int], requests: Int, rows: Int,
        targets: [(String, @Sendable () async throws -> Scenario.Client)]
    ) async throws -> [Scenario.Result] {
        var results: [Scenario.Result] = []
        for level in levels {
            for operation in [Scenario.Operation.get, .put] {
                // Interleave targets per scenario so drift on the machine hits them alike.
                for (target, makeClient) in targets {
                    let scenario = Scenario(
                        backend: backend, target: target, operation: operation, connections: level, requests: requests, rows: rows,
                        makeClient: makeClient)
                    let result = try await scenario.run()
                    say(result.line)
                    results.append(result)
                }
            }
        }
        return results
    }

}

/// The honest baseline: a Hummingbird route on the same paths that makes the same store call
/// the router makes (the owner by the map, then `read` or `write`) and answers the same JSON,
/// with no gate, no fences followed, no canary, no load statistics and no metrics. What the
/// router costs is the difference between this and Reshard's route.
enum BareStoreServer {
    static func start(_ cluster: ScratchCluster) async throws -> LoopbackServer {
        let map = cluster.router.shardMap
        let table = try TableName(benchTable).orThrow("table name")
        var stores: [ShardID: any ShardStore] = [:]
        for shard in map.shards { stores[shard] = try cluster.router.store(shard).orThrow("store \(shard)") }
        let owners = stores
        let router = Router()
        router.get("store/v1/tables/:table/rows/:pk") { _, context in
            let pk = try context.parameters.require("pk")
            let owner = map.owner(of: KeyHash.of(pk))
            guard let store = owners[owner], let row = try await store.read(table: table, pk: pk, shardKey: pk).value, let body = row.body
            else { return Response(status: .notFound) }
            let text = #"{"pk":"\#(row.pk)","version":\#(row.version),"shard":"\#(owner.rawValue)","row":\#(body)}"#
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.put("store/v1/tables/:table/rows/:pk") { request, context in
            let pk = try context.parameters.require("pk")
            let body = try await request.body.collect(upTo: 1 << 20)
            let owner = map.owner(of: KeyHash.of(pk))
            guard let store = owners[owner] else { return Response(status: .notFound) }
            let write = ClientWrite(
                table: table, pk: pk, shardKey: pk, body: String(buffer: body),
                proposedVersion: HybridLogicalClock.timestamp(millis: wallMillis()), generation: map.generation)
            guard let version = try await store.write(write).version else { return Response(status: .notFound) }
            let text = #"{"pk":"\#(pk)","version":\#(version),"shard":"\#(owner.rawValue)","generation":\#(map.generation)}"#
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        return try await LoopbackServer.start { bound in
            Application(
                router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { bound($0.localAddress?.port ?? 0) }, logger: benchLogger())
        }
    }
}

/// PostgreSQL's own ceiling for the router's read: pgbench running the store's primary-key
/// `SELECT` against every shard's database at once, as many clients per shard as the store's
/// pool has connections, 4,000 reads each (a count, not `-T`: pgbench started from this process
/// never saw its timer fire). Three keys in four belong to another shard and
/// find nothing, a little cheaper than a hit: the figure is a ceiling.
struct PgbenchCeiling: Codable, Sendable {
    let clients: Int
    let readsPerClient: Int
    let transactionsPerSecond: Double

    static func measure(_ cluster: ScratchCluster, rows: Int) throws -> PgbenchCeiling? {
        guard let pgbench = BenchProcess.find("pgbench") else {
            say("router, postgres: no pgbench, so no ceiling figure")
            return nil
        }
        let endpoints = cluster.router.shardMap.shards.compactMap { try? cluster.router.store($0) as? PostgresShardStore }.map(\.endpoint)
        guard !endpoints.isEmpty else { return nil }
        let script = NSTemporaryDirectory() + "reshard-pgbench-\(UUID().uuidString).sql"
        defer { try? FileManager.default.removeItem(atPath: script) }
        try """
        \\set k random(0, \(max(0, rows - 1)))
        SELECT pk, skey, version, body FROM r_\(benchTable) WHERE pk = 'k' || :k;

        """.write(toFile: script, atomically: true, encoding: .utf8)
        let reads = 4_000
        // One pgbench per shard database, all at once; each prints its own tps line.
        let commands = endpoints.map { endpoint in
            "timeout 120 \"$PGBENCH\" -n -M prepared -c \(endpoint.poolSize) -j 1 -t \(reads) -f \"$SCRIPT\" '\(endpoint.description)' &"
        }
        let (status, output) = BenchProcess.run(
            "/bin/bash", ["-c", commands.joined(separator: "\n") + "\nwait"],
            environment: ["PGBENCH": pgbench, "SCRIPT": script])
        guard status == 0 else { throw BenchError("pgbench failed (\(status)): \(output.suffix(500))") }
        let tps = output.split(separator: "\n").filter { $0.hasPrefix("tps = ") }.compactMap { line in
            Double(line.dropFirst(6).prefix { $0 != " " })
        }
        guard tps.count == endpoints.count else { throw BenchError("pgbench printed \(tps.count) tps lines: \(output.suffix(500))") }
        let total = tps.reduce(0, +)
        say(
            "router, postgres: pgbench point reads on \(endpoints.count) shard databases, \(endpoints.map(\.poolSize).reduce(0, +)) clients: \(Int(total)) tps"
        )
        return PgbenchCeiling(clients: endpoints.map(\.poolSize).reduce(0, +), readsPerClient: reads, transactionsPerSecond: total)
    }
}

/// The HTTP baseline: the same paths, answered with a fixed body and no storage.
enum BareServer {
    static func start() async throws -> LoopbackServer {
        try await LoopbackServer.start { bound in
            Application(
                router: router(), configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { bound($0.localAddress?.port ?? 0) }, logger: benchLogger())
        }
    }

    static func router() -> Router<BasicRequestContext> {
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
