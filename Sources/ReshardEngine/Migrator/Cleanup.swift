import ReshardCore
import ReshardStore

/// Deletes what a migration leaves behind: moved rows from the old owners at cleanup (the point
/// of no return: from the first chunk on, rollback is no longer offered), copies from the new
/// owners on rollback, tombstones past the horizon, and the changelog entries it consumed. None
/// of it writes a changelog entry.
struct Cleanup: Sendable {
    let stores: any StoreDirectory

    /// Deletes up to `limit` rows of every table in `range` from `shard`.
    func deleteChunk(task: Int, shard: ShardID, range: HashRange, limit: Int) async throws -> MigrationEvent {
        let deleted = try await stores.shardStore(shard).deleteRange(range, limit: limit)
        return .chunkDeleted(task: task, rows: deleted, done: deleted < limit)
    }

    /// Deletes up to `limit` rows of `table` from `shard`, and drops the table once it is empty.
    func clearTable(task: Int, shard: ShardID, table: TableName, limit: Int) async throws -> MigrationEvent {
        let store = try stores.shardStore(shard)
        let deleted = try await store.clearTable(table, limit: limit)
        if deleted < limit { try await store.dropTable(table) }
        return .chunkDeleted(task: task, rows: deleted, done: deleted < limit)
    }

    /// Purges up to `limit` tombstones older than version `before` from every table of `shard`.
    func purgeTombstones(task: Int, shard: ShardID, before: UInt64, limit: Int) async throws -> MigrationEvent {
        let purged = try await stores.shardStore(shard).purgeTombstones(before: before, limit: limit)
        return .tombstonesPurged(task: task, rows: purged, done: purged < limit)
    }

    /// Purges each changelog up to the position the migration applied.
    func finish(purgeThrough positions: [ShardID: UInt64]) async throws -> MigrationEvent {
        for (shard, position) in positions.sorted(by: { $0.key < $1.key }) {
            try await stores.shardStore(shard).purgeChanges(through: position)
        }
        return .finished
    }
}
