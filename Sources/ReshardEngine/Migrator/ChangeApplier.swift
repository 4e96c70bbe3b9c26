import ReshardCore
import ReshardStore

/// Applies a shard's changelog to the other side of the moves it takes part in: forward (old
/// owner → new owner) before the switch, reverse (new → old) during bake and rollback.
/// Changes outside moving ranges are skipped; applying one twice is harmless (version rule).
struct ChangeApplier: Sendable {
    let plan: MigrationPlan
    let stream: ChangeStreamID
    let batch: Int
    let store: @Sendable (ShardID) throws -> any ShardStore

    /// Applies one batch after `after` (stopping at `through` when given) and reports the new
    /// position, the backlog behind the head, and the age of the oldest unapplied change.
    func tail(_ direction: ReplicationDirection, shard: ShardID, after: UInt64, through: UInt64?, now: UInt64) async throws
        -> MigrationEvent
    {
        let read = try await store(shard).changes(stream, after: after, through: through, limit: batch)
        var outgoing: [ShardID: [StoredRow]] = [:]
        for change in read.changes {
            guard let move = plan.move(containing: change.row.hash) else { continue }
            let (from, to) = direction == .forward ? (move.source, move.target) : (move.target, move.source)
            if from == shard { outgoing[to, default: []].append(change.row) }
        }
        for (destination, rows) in outgoing { _ = try await store(destination).apply(rows) }
        let lag = read.oldestPendingMillis.map { now > $0 ? now - $0 : 0 } ?? 0
        return .tailed(direction, shard: shard, position: read.position, backlog: read.backlog, lagMillis: lag)
    }

    /// Tails until `through` is applied.
    func drain(_ direction: ReplicationDirection, shard: ShardID, after: UInt64, through: UInt64, now: UInt64) async throws -> UInt64 {
        var position = after
        while position < through {
            guard case .tailed(_, _, let next, _, _) = try await tail(direction, shard: shard, after: position, through: through, now: now),
                next > position
            else { break }
            position = next
        }
        return position
    }
}
