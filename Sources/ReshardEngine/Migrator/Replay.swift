import ReshardCore
import ReshardStore

/// `traffic_replay`'s migrator side: replays the writes routers recorded, in the order recorded,
/// on the new owners under the version rule (a write the changelog or the copy already carried
/// changes nothing), then forgets them.
struct Replay: Sendable {
    let plan: MigrationPlan
    let log: MigrationLogID
    let metadata: any MetadataStore
    let stores: any StoreDirectory

    func replay(after position: UInt64, limit: Int) async throws -> MigrationEvent {
        let entries = try await metadata.readLog(log, after: position, limit: limit)
        var byTarget: [ShardID: [StoredRow]] = [:]
        for entry in entries {
            // An entry that is not a recorded write (edited by hand) is skipped: the changelog
            // carries the write it stood for.
            guard let (row, _, _) = LoggedWrite.decode(entry.body), let move = plan.move(containing: row.hash) else { continue }
            byTarget[move.target, default: []].append(row)
        }
        for (target, rows) in byTarget.sorted(by: { $0.key < $1.key }) {
            _ = try await stores.shardStore(target).apply(rows)
        }
        let through = entries.last?.position ?? position
        if through > position { try await metadata.trimLog(log, through: through) }
        // A short read took the whole log as it stood, so nothing recorded before it waits; a full
        // one is counted (catching up ends on it).
        let waiting = entries.count < MigrationLogID.clampedReadLimit(limit) ? 0 : try await metadata.logStatus(log).entries
        return .replayed(through: through, applied: entries.count, waiting: waiting)
    }
}
