import Foundation
import Prometheus
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardTestKit
import ServiceLifecycle

/// A server of the benchmarks on a free loopback port, run in its own service group.
struct LoopbackServer: Sendable {
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Runs the service `make` builds; the service calls the closure it is given with its port.
    static func start(_ make: (@escaping @Sendable (Int) -> Void) throws -> any Service) async throws -> LoopbackServer {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = try make { continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [], logger: benchLogger()))
        let task = Task { try await group.run() }
        var port = 0
        for await bound in ports {
            port = bound
            break
        }
        guard port > 0 else { throw BenchError("a benchmark server did not start") }
        return LoopbackServer(port: port, group: group, task: task)
    }

    /// Reshard's HTTP server over a benchmark cluster's router.
    static func reshard(_ cluster: ScratchCluster, migrations: MigrationManager, token: String = UUID().uuidString) async throws
        -> LoopbackServer
    {
        let configuration = ServerConfiguration(
            port: 0, adminToken: token, newShardLocation: { .sqlite(path: cluster.folder.relativeShardPath($0)) })
        return try await start { bound in
            try ReshardApplication.make(
                shardRouter: cluster.router, configuration: configuration, registry: PrometheusCollectorRegistry(), logger: benchLogger(),
                migrations: migrations
            ) { bound($0.localAddress?.port ?? 0) }
        }
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// Rows for the benchmarks, written straight into the shards that own them (the copy and the
/// load are measured, not this).
enum BenchData {
    /// Writes rows `k0 …` of about 200 bytes into `table`, each on its owner by the current map;
    /// returns their payload bytes.
    static func load(_ cluster: ScratchCluster, table name: String, rows: Int, prefix: String = "k") async throws -> Int {
        let table = try TableName(name).orThrow("table name")
        let map = cluster.router.shardMap
        let version = HybridLogicalClock.timestamp(millis: wallMillis())
        var bytes = 0
        var batches: [ShardID: [StoredRow]] = [:]
        for index in 0..<rows {
            let pk = "\(prefix)\(index)"
            let body = String(decoding: BenchLoad.body(index, step: 0), as: UTF8.self)
            bytes += pk.utf8.count * 2 + body.utf8.count + 16
            let row = StoredRow(table: table, pk: pk, shardKey: pk, version: version + UInt64(index), body: body)
            let owner = map.owner(of: row.hash)
            batches[owner, default: []].append(row)
            if let batch = batches[owner], batch.count == 5_000 || index == rows - 1 {
                try await flush(cluster, owner, batch)
                batches[owner] = []
            }
        }
        for (owner, batch) in batches where !batch.isEmpty { try await flush(cluster, owner, batch) }
        return bytes
    }

    private static func flush(_ cluster: ScratchCluster, _ shard: ShardID, _ rows: [StoredRow]) async throws {
        _ = try await cluster.router.store(shard).orThrow("store \(shard)").apply(rows)
    }
}
