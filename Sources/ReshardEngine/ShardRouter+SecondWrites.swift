import ReshardCore
import ReshardStore

extension ShardRouter {
    /// What `row`, just taken by its old owner, needs as `second` says (`SecondWrites.pick`, asked
    /// first so that a write outside any migration builds nothing): `dual_write`'s second write,
    /// to the new owner of its moving range at the same version under the version rule (a copy
    /// or change that got there first is harmless either way), or `traffic_replay`'s record. It
    /// never fails the client's write, which the old owner decided; a second write that fails is
    /// queued for the migrator to retry.
    func writeSecond(_ row: StoredRow, to second: SecondWrites.Pick, in current: Snapshot) async {
        let (move, migration, mode) = (second.move, second.migration, second.mode)
        if mode == .record {
            await record(row, for: move, migration: migration, generation: current.map.generation)
            return
        }
        do {
            let target = try shard(move.target, in: current)
            _ = try await target.store.writeSecond(row, routedBy: current.map.generation)
            secondWrites.record(.written)
        } catch let error as StoreError where error.fenceGeneration != nil {
            // The copies are fenced: the migration rolled back, and nothing needs carrying.
            secondWrites.record(.unqueued)
        } catch {
            let log = MigrationLogID(migration: ChangeStreamID(migration: migration), kind: .retry)
            let queued = try? await metadata.appendToLog(
                log, [LoggedWrite(row, target: move.target, generation: current.map.generation).encoded()],
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

    /// `traffic_replay`'s record of a client write the old owner took: appended to the migration's
    /// replay log for the migrator to replay on the new owner. It never fails the client's write;
    /// a write that cannot be recorded is carried by the changelog.
    private func record(_ row: StoredRow, for move: Move, migration: String, generation: UInt64) async {
        let log = MigrationLogID(migration: ChangeStreamID(migration: migration), kind: .replay)
        do {
            let entry = try LoggedWrite(row, target: move.target, generation: generation).encoded()
            guard try await metadata.appendToLog(log, [entry], limit: SecondWrites.recordLimit) != nil else {
                throw RouterError(.unavailable, "replay_log_full", "the replay log holds \(SecondWrites.recordLimit) writes")
            }
            secondWrites.record(.recorded)
        } catch {
            logger.warning(
                "a client write could not be recorded; the changelog carries it",
                metadata: ["migration": "\(migration)", "table": "\(row.table)", "error": "\(error)"])
            secondWrites.record(.unrecorded)
        }
    }
}
