import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import Testing

/// Where a fixture's shards live.
enum ShardBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    /// Databases on the servers `scripts/postgres` started, shards alternating between them.
    case postgres
    /// Shards alternating between a server that decodes its WAL and one with `wal_level =
    /// replica`, whose shards capture changes by triggers.
    case postgresMixed = "postgres-mixed"

    /// PostgreSQL joins when its servers are named in the environment (see `PostgresScratch`).
    static var allCases: [ShardBackend] {
        [.sqlite] + (PostgresScratch.servers().isEmpty ? [] : [.postgres])
            + (PostgresScratch.servers(name: "RESHARD_PG_REPLICA").isEmpty ? [] : [.postgresMixed])
    }

    /// The servers shards alternate between.
    var servers: [PostgresEndpoint] {
        switch self {
        case .sqlite: []
        case .postgres: PostgresScratch.servers()
        case .postgresMixed: Array(PostgresScratch.servers().prefix(1)) + PostgresScratch.servers(name: "RESHARD_PG_REPLICA").prefix(1)
        }
    }

    var testDescription: String { rawValue }
}

/// A real router over real shards (SQLite files in a temporary folder, or PostgreSQL databases)
/// with SQLite metadata in that folder.
struct RouterFixture {
    let folder: DataFolder
    let metadata: SQLiteMetadataStore
    let router: ShardRouter
    let backend: ShardBackend
    private let databases: DatabaseList

    static func make(shards: Int = 4, backend: ShardBackend = .sqlite) async throws -> RouterFixture {
        let databases = DatabaseList()
        switch backend {
        case .sqlite:
            let cluster = try await EmbeddedCluster.temporary(
                prefix: "reshard-engine", shards: shards, metricsFactory: NOOPMetricsHandler.instance, logger: Logger(label: "test"))
            return RouterFixture(
                folder: cluster.folder, metadata: cluster.metadata, router: cluster.router, backend: backend, databases: databases)
        case .postgres, .postgresMixed:
            let folder = DataFolder(path: NSTemporaryDirectory() + "reshard-engine-pg-" + UUID().uuidString)
            try folder.prepare()
            let metadata = try SQLiteMetadataStore(path: folder.metadataPath)
            var ids: [ShardID] = []
            for index in 1...shards {
                let id = try #require(ShardID("s\(index)"))
                try await metadata.addShard(ShardRecord(id: id, location: try await databases.create(index: index, on: backend.servers)))
                ids.append(id)
            }
            try await metadata.publish(RingPlacement().shardMap(for: ids, generation: 1), replacing: nil)
            let router = try await ShardRouter(
                metadata: metadata, openStore: folder.opener, metricsFactory: NOOPMetricsHandler.instance, logger: Logger(label: "test"))
            return RouterFixture(folder: folder, metadata: metadata, router: router, backend: backend, databases: databases)
        }
    }

    /// Registers an empty shard `id` of the fixture's backend (a PostgreSQL shard on the server
    /// its number picks, so moves cross servers).
    func addShard(_ id: String) async throws {
        let location: ShardLocation
        switch backend {
        case .sqlite: location = .sqlite(path: folder.relativeShardPath(try #require(ShardID(id))))
        case .postgres, .postgresMixed: location = try await databases.create(index: Int(id.dropFirst()) ?? 1, on: backend.servers)
        }
        _ = try await router.addShard(id: id, location: { _ in location })
    }

    /// The store of a shard, to check where rows really are behind the router's back.
    func openShard(_ id: String) throws -> any ShardStore {
        let shard = try #require(ShardID(id))
        return try #require(router.store(shard))
    }

    /// Deletes the folder, and the databases in the background. A database that still has a
    /// replication slot refuses to go, so a leaked slot stays for the suite's final check.
    func remove() {
        try? FileManager.default.removeItem(atPath: folder.path)
        let databases = databases
        Task { await databases.dropAll() }
    }
}

/// The PostgreSQL databases a fixture created.
actor DatabaseList {
    private var created: [PostgresEndpoint] = []

    func create(index: Int, on servers: [PostgresEndpoint]) async throws -> ShardLocation {
        let server = try #require(servers.isEmpty ? nil : servers[(index - 1) % servers.count])
        let database = try await PostgresScratch.createDatabase(on: server, prefix: "e")
        created.append(database)
        return .postgres(url: database.description)
    }

    func dropAll() async {
        for database in created { try? await PostgresScratch.dropDatabase(database, slots: false) }
        created = []
    }
}
