import ReshardCore
import ReshardStore

extension ShardRouter {
    /// `dual_write`'s second write of `row`, which `owner` just took: to the new owner of its
    /// moving range, at the same version, under the version rule (a copy or change that got there
    /// first is harmless either way). It never fails the client's write, which the old owner
    /// decided; the changelog carries one that fails.
    func writeSecond(_ row: StoredRow, owner: ShardID, in current: Snapshot) async {
        guard let (move, migration) = secondWrites.pick(row.hash, owner: owner, generation: current.map.generation) else { return }
        do {
            guard let target = current.shards[move.target] else {
                throw RouterError.shardUnavailable(move.target.rawValue, "not registered on this router")
            }
            _ = try await target.store.writeSecond(row, routedBy: current.map.generation)
            secondWrites.record(.written)
        } catch {
            logger.warning(
                "a second write failed; the changelog carries it",
                metadata: ["migration": "\(migration)", "shard": "\(move.target)", "table": "\(row.table)", "error": "\(error)"])
            secondWrites.record(.unqueued)
        }
    }
}
