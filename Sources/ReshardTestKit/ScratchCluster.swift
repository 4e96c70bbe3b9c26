import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore

/// A throw-away cluster for benchmarks and tests: SQLite metadata in a temporary folder and shards that
/// are SQLite files in that folder or fresh databases on PostgreSQL servers (shard `sN` on
/// server `(N-1) mod servers`, so moves between neighbours cross servers). `remove()` deletes
/// all of it.
public struct ScratchCluster: Sendable {
    /// The shards' backend.
    public let backend: ShardBackend
    /// The folder holding the metadata (and the SQLite shards).
    public let folder: DataFolder
    /// The metadata store.
    public let metadata: SQLiteMetadataStore
    /// The router over the shards.
    public let router: ShardRouter
    private let servers: [PostgresEndpoint]
    private let databases: ScratchDatabases

    /// A cluster of `shards` shards `s1…sN` placed on a ring as generation 1. PostgreSQL shards
    /// go on `servers`, by default the ones the environment names for `backend`.
    public static func make(
        prefix: String, backend: ShardBackend, shards: Int, servers: [PostgresEndpoint]? = nil,
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance, logger: Logger
    ) async throws -> ScratchCluster {
        let servers = servers ?? backend.clusterServers
        switch backend {
        case .sqlite: break
        case .postgres, .postgresTriggers:
            guard !servers.isEmpty else { throw ScratchError("a \(backend) cluster needs a server") }
        case .memory:
            throw ScratchError("a router cannot open memory shards from shard records; the simulation builds its own world")
        }
        let folder = DataFolder(path: NSTemporaryDirectory() + prefix + "-" + UUID().uuidString)
        try folder.prepare()
        let metadata = try SQLiteMetadataStore(path: folder.metadataPath)
        let databases = ScratchDatabases()
        var ids: [ShardID] = []
        for index in 1...max(1, shards) {
            guard let id = ShardID("s\(index)") else { throw ScratchError("invalid shard id s\(index)") }
            let location = try await Self.location(
                for: id, index: index, backend: backend, folder: folder, servers: servers, databases: databases)
            try await metadata.addShard(ShardRecord(id: id, location: location))
            ids.append(id)
        }
        try await metadata.publish(RingPlacement().shardMap(for: ids, generation: 1), replacing: nil)
        let router = try await ShardRouter(metadata: metadata, openStore: folder.opener, metricsFactory: metricsFactory, logger: logger)
        return ScratchCluster(
            backend: backend, folder: folder, metadata: metadata, router: router, servers: servers, databases: databases)
    }

    /// Registers an empty shard `sN` (it owns nothing until a migration gives it ranges).
    public func addShard(index: Int) async throws -> ShardID {
        guard let id = ShardID("s\(index)") else { throw ScratchError("invalid shard id s\(index)") }
        let location = try await Self.location(
            for: id, index: index, backend: backend, folder: folder, servers: servers, databases: databases)
        _ = try await router.addShard(id: id.rawValue, location: { _ in location })
        return id
    }

    /// Closes the shards and deletes the folder and the databases. Without `dropSlots`, a
    /// database that still has a replication slot stays (a test suite's leak check finds it).
    public func remove(dropSlots: Bool = true) async {
        for shard in (try? await metadata.shards()) ?? [] { await router.store(shard.id)?.close() }
        await databases.dropAll(slots: dropSlots)
        try? FileManager.default.removeItem(atPath: folder.path)
    }

    /// The PostgreSQL database of a shard, for benchmarks that reach behind the router.
    public func database(of shard: ShardID) async throws -> PostgresEndpoint? {
        guard let record = try await metadata.shards().first(where: { $0.id == shard }), case .postgres(let url) = record.location
        else { return nil }
        return try PostgresEndpoint(url: url)
    }

    /// The path of a SQLite shard's file.
    public func file(of shard: ShardID) async throws -> String? {
        guard let record = try await metadata.shards().first(where: { $0.id == shard }), case .sqlite(let path) = record.location
        else { return nil }
        return path.hasPrefix("/") ? path : folder.path + "/" + path
    }

    /// A fresh database on the server shard number `index` would use (for raw-copy baselines);
    /// `remove()` drops it with the rest.
    public func scratchDatabase(index: Int) async throws -> PostgresEndpoint {
        guard !servers.isEmpty else { throw ScratchError("no PostgreSQL server") }
        return try await databases.create(on: servers[(index - 1) % servers.count])
    }

    private static func location(
        for id: ShardID, index: Int, backend: ShardBackend, folder: DataFolder, servers: [PostgresEndpoint], databases: ScratchDatabases
    ) async throws -> ShardLocation {
        switch backend {
        case .sqlite: return .sqlite(path: folder.relativeShardPath(id))
        case .postgres, .postgresTriggers:
            return .postgres(url: try await databases.create(on: servers[(index - 1) % servers.count]).description)
        case .memory: throw ScratchError("no shard location for a memory shard")
        }
    }
}

/// The databases a scratch cluster created, to drop them at the end.
private actor ScratchDatabases {
    private var created: [PostgresEndpoint] = []

    func create(on server: PostgresEndpoint) async throws -> PostgresEndpoint {
        let database = try await PostgresScratch.createDatabase(on: server, prefix: "scratch")
        created.append(database)
        return database
    }

    func dropAll(slots: Bool) async {
        for database in created { try? await PostgresScratch.dropDatabase(database, slots: slots) }
        created = []
    }
}
