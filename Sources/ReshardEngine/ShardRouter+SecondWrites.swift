import ReshardCore
import ReshardStore

extension ShardRouter {
    /// `dual_write`'s second write of `row`, which `owner` just took: to the new owner of its
    /// moving range, at the same version, under the version rule (a copy or change that got there
    /// first is harmless either way). It never fails the client's write, which the old owner
    /// decided; one that fails is queued for the migrator to retry.
    func writeSecond(_ row: StoredRow, owner: ShardID, in current: Snapshot) async {
        guard let (move, migration) = secondWrites.pick(row.hash, owner: owner, generation: current.map.generation) else { return }
        do {
            guard let target = current.shards[move.target] else {
                throw RouterError.shardUnavailable(move.target.rawValue, "not registered on this router")
            }
            _ = try await target.store.writeSecond(row, routedBy: current.map.generation)
            secondWrites.record(.written)
        } catch let error as StoreError where error.fenceGeneration != nil {
            // The copies are fenced: the migration rolled back, and nothing needs carrying.
            secondWrites.record(.unqueued)
        } catch {
            let log = MigrationLogID(migration: ChangeStreamID(migration: migration), kind: .retry)
            let queued = try? await metadata.appendToLog(
                log, [QueuedSecondWrite(row, target: move.target, generation: current.map.generation).encoded()],
                limit: SecondWrites.queueLimit)
            let result: SecondWrites.Result = queued == nil ? .unqueued : .queued
            logger.warning(
                "a second write failed",
                metadata: [
                    "migration": "\(migration)", "shard": "\(move.target)", "table": "\(row.table)", "error": "\(error)",
                    "then": "\(result == .queued ? "queued for retries" : "left to the changelog")",
                ])
            secondWrites.record(result)
        }
    }
}
