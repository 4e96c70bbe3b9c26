import ReshardCore
import ReshardStore

/// Applies a shard's changelog to the other side of the moves it takes part in: forward (old
/// owner → new owner) before the switch, reverse (new → old) during bake and rollback.
/// Changes outside moving ranges are skipped; applying one twice is harmless (version rule).
/// It also opens the migration's change streams before anything is copied, and closes them.
struct ChangeApplier: Sendable {
    let plan: MigrationPlan
    let stream: ChangeStreamID
    let batch: Int
    let stores: any StoreDirectory

    /// Creates every table on the targets, then opens the stream on every shard taking part:
    /// sources for forward replication, targets for reverse replication after the switch (a
    /// PostgreSQL slot must exist before the changes it is to deliver). Reports the sources'
    /// positions, from which everything later is replayed.
    func prepare(sources: [ShardID], targets: [ShardID]) async throws -> MigrationEvent {
        // A shard-key change builds its new layout on every shard.
        let tables = stores.tableNames + (plan.relayout?.to.storages ?? [])
        for target in targets {
            for table in tables { try await stores.shardStore(target).ensureTable(table) }
        }
        var positions: [ShardID: UInt64] = [:]
        for shard in Set(sources).union(targets).sorted() {
            let start = try await stores.shardStore(shard).openChangeStream(stream)
            if sources.contains(shard) { positions[shard] = start }
        }
        return .prepared(positions: positions)
    }

    /// Applies one batch after `after` (stopping at `through` when given) and reports the new
    /// position, the backlog behind the head, and the age of the oldest unapplied change.
    func tail(_ direction: ReplicationDirection, shard: ShardID, after: UInt64, through: UInt64?, now: UInt64) async throws
        -> MigrationEvent
    {
        let read = try await stores.shardStore(shard).changes(stream, after: after, through: through, limit: batch)
        let lag = read.oldestPendingMillis.map { now > $0 ? now - $0 : 0 } ?? 0
        if let relayout = plan.relayout {
            // Each change of one layout is placed again in the other by that one's shard key.
            let rows = read.changes.map(\.row)
            let (from, to) = direction == .forward ? (relayout.from, relayout.to) : (relayout.to, relayout.from)
            try await LayoutWriter(layout: to, map: plan.source, stores: stores).apply(RowImage.images(rows, in: from))
            return .tailed(direction, shard: shard, position: read.position, backlog: read.backlog, lagMillis: lag)
        }
        var outgoing: [ShardID: [StoredRow]] = [:]
        for change in read.changes {
            guard let move = plan.move(containing: change.row.hash) else { continue }
            let (from, to) = direction == .forward ? (move.source, move.target) : (move.target, move.source)
            if from == shard { outgoing[to, default: []].append(change.row) }
        }
        for (destination, rows) in outgoing.sorted(by: { $0.key < $1.key }) { _ = try await stores.shardStore(destination).apply(rows) }
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

    /// Closes the stream on every shard of the plan. Unreachable shards are skipped and
    /// reported; the next start's sweep closes what is left.
    func closeStreams() async -> [String] {
        var problems: [String] = []
        for shard in Set(plan.sources).union(plan.targets).sorted() {
            do {
                try await stores.shardStore(shard).closeChangeStream(stream)
            } catch {
                problems.append("\(shard): \(error)")
            }
        }
        return problems
    }
}
