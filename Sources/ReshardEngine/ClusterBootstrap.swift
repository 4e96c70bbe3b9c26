import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore

/// The embedded default's folder: `meta.sqlite`, `shards/<id>.sqlite` and `admin-token`.
public struct DataFolder: Sendable, Hashable {
    /// The folder's path.
    public let path: String

    /// A data folder at `path` (created by `prepare()`).
    public init(path: String) {
        self.path = path
    }

    /// The metadata database.
    public var metadataPath: String { path + "/meta.sqlite" }
    /// The admin token file.
    public var adminTokenPath: String { path + "/admin-token" }
    /// A shard file's path relative to the folder, as recorded in the metadata.
    public func relativeShardPath(_ id: ShardID) -> String { "shards/\(id.rawValue).sqlite" }

    /// Creates the folder and its `shards` subfolder, readable by their owner only (they hold
    /// every row and the admin token).
    public func prepare() throws {
        for folder in [path, path + "/shards"] where !FileManager.default.fileExists(atPath: folder) {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    /// Whether others than the owner may enter or read the folder (one made by an older release).
    public var isOpenToOthers: Bool {
        let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0
        return mode & 0o077 != 0
    }

    /// Opens shard stores, resolving relative SQLite paths against this folder.
    public var opener: ShardStoreOpener {
        let base = path
        return { record in
            switch record.location {
            case .sqlite(let file):
                let resolved = file.hasPrefix("/") ? file : base + "/" + file
                return try SQLiteShardStore(shardID: record.id, path: resolved)
            case .postgres(let url):
                return try await PostgresShardStore.open(
                    shardID: record.id, endpoint: try PostgresEndpoint(url: url), logger: Logger(label: "reshard.postgres"))
            }
        }
    }
}

/// Creates a cluster's first shards and its generation-1 shard map when the metadata is empty.
public enum ClusterBootstrap {
    /// What bootstrap found or did.
    public enum Outcome: Sendable, Equatable {
        /// The metadata already had a shard map; nothing was changed.
        case existing(generation: UInt64, shards: Int)
        /// `shards` new shards were created and placed on a ring.
        case created(shards: Int)
    }

    /// Registers `shardCount` SQLite shards `s1…sN` in `folder` and publishes their ring
    /// placement as generation 1, unless a shard map exists already.
    public static func bootstrapIfEmpty(
        metadata: any MetadataStore,
        folder: DataFolder,
        shardCount: Int,
        placement: any PlacementPlanner = RingPlacement()
    ) async throws -> Outcome {
        if let map = try await metadata.currentShardMap() {
            return .existing(generation: map.generation, shards: try await metadata.shards().count)
        }
        guard (1...1024).contains(shardCount) else {
            throw RouterError(.badRequest, "invalid_shard_count", "the shard count must be 1…1024; got \(shardCount)")
        }
        try folder.prepare()
        let ids = (1...shardCount).compactMap { ShardID("s\($0)") }
        let registered = Set(try await metadata.shards().map(\.id))
        for id in ids where !registered.contains(id) {
            let record = ShardRecord(id: id, location: .sqlite(path: folder.relativeShardPath(id)))
            // Opening creates the file and its schema before the shard is recorded.
            _ = try await folder.opener(record)
            try await metadata.addShard(record)
        }
        try await metadata.publish(placement.shardMap(for: ids, generation: 1), replacing: nil)
        return .created(shards: shardCount)
    }
}

/// The embedded default in one call: a data folder's metadata, its shards (created on first
/// open) and a router over them. `serve`, the benchmarks and the tests all start here.
public struct EmbeddedCluster: Sendable {
    /// The folder the cluster lives in.
    public let folder: DataFolder
    /// Its metadata store.
    public let metadata: SQLiteMetadataStore
    /// The router over its shards.
    public let router: ShardRouter
    /// Whether this open created the cluster.
    public let outcome: ClusterBootstrap.Outcome

    /// Opens the cluster in `folder`, creating `shards` SQLite shards if it holds none yet.
    public static func open(
        folder: DataFolder, shards: Int, metricsFactory: any MetricsFactory, logger: Logger
    ) async throws -> EmbeddedCluster {
        try folder.prepare()
        let metadata = try SQLiteMetadataStore(path: folder.metadataPath)
        let outcome = try await ClusterBootstrap.bootstrapIfEmpty(metadata: metadata, folder: folder, shardCount: shards)
        let router = try await ShardRouter(metadata: metadata, openStore: folder.opener, metricsFactory: metricsFactory, logger: logger)
        return EmbeddedCluster(folder: folder, metadata: metadata, router: router, outcome: outcome)
    }

    /// Where `POST /v1/shards` puts a new shard of this cluster.
    public var newShardLocation: @Sendable (ShardID) -> ShardLocation {
        let folder = folder
        return { .sqlite(path: folder.relativeShardPath($0)) }
    }

    /// A cluster in a fresh folder under the system temporary directory, for tests and benchmarks.
    public static func temporary(
        prefix: String, shards: Int, metricsFactory: any MetricsFactory, logger: Logger
    ) async throws -> EmbeddedCluster {
        let folder = DataFolder(path: NSTemporaryDirectory() + prefix + "-" + UUID().uuidString)
        return try await open(folder: folder, shards: shards, metricsFactory: metricsFactory, logger: logger)
    }

    /// Deletes the folder (temporary clusters only).
    public func remove() {
        try? FileManager.default.removeItem(atPath: folder.path)
    }
}
