import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore

/// Where a cluster's metadata and shards live, as `reshard serve` is told by its options or a
/// config file: PostgreSQL for real deployments (several routers share the metadata), or the
/// embedded default's SQLite files.
public struct ClusterConfiguration: Sendable, Equatable {
    /// The metadata: a `postgres://` URL, or a SQLite file path.
    public var metadata: String?
    /// Shards to register (and, for a new cluster, to place on a ring), by name: a `postgres://`
    /// URL, or `sqlite:PATH`.
    public var shards: [(id: ShardID, location: ShardLocation)]

    /// A configuration.
    public init(metadata: String? = nil, shards: [(id: ShardID, location: ShardLocation)] = []) {
        self.metadata = metadata
        self.shards = shards
    }

    public static func == (lhs: ClusterConfiguration, rhs: ClusterConfiguration) -> Bool {
        lhs.metadata == rhs.metadata && lhs.shards.map(\.id) == rhs.shards.map(\.id)
            && lhs.shards.map(\.location) == rhs.shards.map(\.location)
    }

    /// Parses `ID=URL` (a `postgres://` URL, or `sqlite:PATH`). A password in the URL is refused:
    /// it would be stored in the metadata and shown in status; each process reads `PGPASSWORD`.
    public static func shard(_ spec: String) throws -> (id: ShardID, location: ShardLocation) {
        guard let equals = spec.firstIndex(of: "=") else { throw ClusterError("a shard is ID=URL; got \(spec)") }
        let name = String(spec[..<equals])
        let address = String(spec[spec.index(after: equals)...])
        guard let id = ShardID(name) else { throw ClusterError("invalid shard name \(name): use [a-z0-9_-], up to 32") }
        return (id, try location(address))
    }

    /// The location an address names.
    public static func location(_ address: String) throws -> ShardLocation {
        if address.hasPrefix("sqlite:") {
            let path = String(address.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw ClusterError("sqlite: needs a path") }
            return .sqlite(path: path)
        }
        let endpoint = try PostgresEndpoint(url: address, environment: [:])
        guard endpoint.password == nil else {
            throw ClusterError("put no password in \(endpoint): each process reads it from PGPASSWORD")
        }
        return .postgres(url: address)
    }
}

/// A configuration or start-up problem, said in a sentence.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
    /// The sentence.
    public let description: String

    /// An error.
    public init(_ description: String) { self.description = description }
}

/// A cluster opened for serving: its metadata, its router, and whether this start created it.
public struct OpenedCluster: Sendable {
    /// The metadata store.
    public let metadata: any MetadataStore
    /// The router over the shards.
    public let router: ShardRouter
    /// What the start found or did.
    public let outcome: ClusterBootstrap.Outcome

    /// Opens the metadata and the shards `configuration` names (SQLite paths resolve against
    /// `folder`); registers the shards that are new, and for a cluster without a shard map places
    /// them on a ring as generation 1. Every shard is opened before anything is written, so an
    /// unreachable one stops the start with its name and address, and changes nothing.
    public static func open(
        _ configuration: ClusterConfiguration, folder: DataFolder, embeddedShards: Int, routerName: String,
        metricsFactory: any MetricsFactory, logger: Logger
    ) async throws -> OpenedCluster {
        let metadata: any MetadataStore
        if let spec = configuration.metadata, spec.hasPrefix("postgres://") || spec.hasPrefix("postgresql://") {
            metadata = try await PostgresMetadataStore.open(endpoint: try PostgresEndpoint(url: spec), logger: logger)
        } else {
            try folder.prepare()
            metadata = try SQLiteMetadataStore(path: configuration.metadata ?? folder.metadataPath)
        }
        let outcome: ClusterBootstrap.Outcome
        if configuration.shards.isEmpty {
            if metadata is SQLiteMetadataStore {
                outcome = try await ClusterBootstrap.bootstrapIfEmpty(metadata: metadata, folder: folder, shardCount: embeddedShards)
            } else {
                guard let map = try await metadata.currentShardMap() else {
                    throw ClusterError("the metadata holds no cluster yet: name its shards with --shard ID=URL")
                }
                outcome = .existing(generation: map.generation, shards: try await metadata.shards().count)
            }
        } else {
            outcome = try await register(configuration.shards, metadata: metadata, folder: folder)
        }
        let router = try await ShardRouter(
            metadata: metadata, openStore: folder.opener, metricsFactory: metricsFactory, logger: logger, name: routerName)
        return OpenedCluster(metadata: metadata, router: router, outcome: outcome)
    }

    private static func register(
        _ shards: [(id: ShardID, location: ShardLocation)], metadata: any MetadataStore, folder: DataFolder
    ) async throws -> ClusterBootstrap.Outcome {
        let registered = Dictionary(uniqueKeysWithValues: try await metadata.shards().map { ($0.id, $0.location) })
        // Every shard is opened once, all before anything is written; the router opens its own.
        var stores: [ShardID: any ShardStore] = [:]
        defer {
            let opened = Array(stores.values)
            Task { for store in opened { await store.close() } }
        }
        for (id, location) in shards {
            if let known = registered[id], known != location {
                throw ClusterError("shard \(id) is registered at \(known.address), not \(location.address)")
            }
            do {
                stores[id] = try await folder.opener(ShardRecord(id: id, location: location))
            } catch {
                throw ClusterError("shard \(id) at \(location.address) is unreachable: \(error)")
            }
        }
        let tables = try await metadata.tables()
        for (id, location) in shards where registered[id] == nil {
            guard let store = stores[id] else { continue }
            for table in tables { try await store.ensureTable(table.name) }
            try await metadata.addShard(ShardRecord(id: id, location: location))
        }
        if let map = try await metadata.currentShardMap() {
            return .existing(generation: map.generation, shards: try await metadata.shards().count)
        }
        do {
            try await metadata.publish(RingPlacement().shardMap(for: shards.map(\.id), generation: 1), replacing: nil)
        } catch let error as MetadataError where error.isConflict {
            // Another router started the same new cluster first; its map stands.
            return .existing(generation: 1, shards: try await metadata.shards().count)
        }
        return .created(shards: shards.count)
    }
}
