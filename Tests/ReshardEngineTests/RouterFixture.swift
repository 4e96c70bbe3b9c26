import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Testing

/// A real router over real shards (SQLite files in a temporary folder, or PostgreSQL databases
/// alternating between the backend's servers) with SQLite metadata in that folder.
struct RouterFixture {
    let cluster: ScratchCluster
    let backend: ShardBackend

    var folder: DataFolder { cluster.folder }
    var metadata: SQLiteMetadataStore { cluster.metadata }
    var router: ShardRouter { cluster.router }

    static func make(shards: Int = 4, backend: ShardBackend = .sqlite) async throws -> RouterFixture {
        let cluster = try await ScratchCluster.make(
            prefix: "reshard-engine", backend: backend, shards: shards, logger: Logger(label: "test"))
        return RouterFixture(cluster: cluster, backend: backend)
    }

    /// Registers an empty shard `id` (`sN`) of the fixture's backend (a PostgreSQL shard on the
    /// server its number picks, so moves cross servers).
    func addShard(_ id: String) async throws {
        _ = try await cluster.addShard(index: try #require(Int(id.dropFirst())))
    }

    /// The store of a shard, to check where rows really are behind the router's back.
    func openShard(_ id: String) throws -> any ShardStore {
        let shard = try #require(ShardID(id))
        return try #require(router.store(shard))
    }

    /// Deletes the folder and the databases in the background. A database that still has a
    /// replication slot refuses to go, so a leaked slot stays for the suite's final check.
    func remove() {
        let cluster = cluster
        Task { await cluster.remove(dropSlots: false) }
    }
}

/// A store directory over stores a test opened itself.
struct FixedStores: StoreDirectory {
    let stores: [ShardID: any ShardStore]
    let tableNames: [TableName]

    func shardStore(_ shard: ShardID) throws -> any ShardStore {
        guard let store = stores[shard] else { throw StoreError.backend("shard \(shard) is not in this test") }
        return store
    }
}

/// A router over in-memory shards whose faults a test injects, and the metadata it follows:
/// every store registered, `map` published as the first map, and `prepare` run before the
/// router opens (a table a test creates in the metadata, say).
struct MemoryRouter {
    let router: ShardRouter
    let metadata: MemoryMetadataStore

    static func make(
        _ stores: [ShardID: MemoryShardStore], map: ShardMap, prepare: (MemoryMetadataStore) async throws -> Void = { _ in }
    ) async throws -> MemoryRouter {
        let metadata = MemoryMetadataStore()
        for id in stores.keys.sorted() { try await metadata.addShard(ShardRecord(id: id, location: .sqlite(path: "memory/\(id)"))) }
        try await metadata.publish(map, replacing: nil)
        try await prepare(metadata)
        let router = try await ShardRouter(
            metadata: metadata,
            openStore: { record in
                guard let store = stores[record.id] else { throw StoreError.backend("no store \(record.id)") }
                return store
            }, metricsFactory: NOOPMetricsHandler.instance, logger: Logger(label: "test"))
        return MemoryRouter(router: router, metadata: metadata)
    }
}
