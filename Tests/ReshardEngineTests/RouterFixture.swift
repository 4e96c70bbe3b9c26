import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore

/// A real router over real SQLite shards in a temporary folder.
struct RouterFixture {
    let folder: DataFolder
    let metadata: SQLiteMetadataStore
    let router: ShardRouter

    static func make(shards: Int = 4) async throws -> RouterFixture {
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-engine", shards: shards, metricsFactory: NOOPMetricsHandler.instance, logger: Logger(label: "test"))
        return RouterFixture(folder: cluster.folder, metadata: cluster.metadata, router: cluster.router)
    }

    /// Opens a shard file directly, bypassing the router, to check where rows really are.
    func openShard(_ id: String) throws -> SQLiteShardStore {
        try SQLiteShardStore(shardID: ShardID(id)!, path: folder.path + "/shards/\(id).sqlite")
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: folder.path)
    }
}
