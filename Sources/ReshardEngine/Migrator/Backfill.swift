import ReshardCore
import ReshardStore

/// Copies one chunk of a moving range: a `(hash, pk)`-ordered scan of the source after the
/// cursor, written to the target with the never-older-version rule. A copy that read a row
/// before the changelog delivered a newer version of it loses on the target, so the
/// backfill/CDC race always resolves to the newest write.
struct Backfill: Sendable {
    let source: any ShardStore
    let target: any ShardStore

    func copyChunk(task: Int, table: TableName, range: HashRange, after: ScanCursor?, limit: Int) async throws -> MigrationEvent {
        let rows = try await read(table: table, range: range, after: after, limit: limit)
        try await write(rows)
        let last = rows.last.map { ScanCursor(hash: $0.hash, pk: $0.pk) } ?? after
        return .chunkCopied(
            task: task, last: last, rows: rows.count, done: rows.count < limit, bytes: rows.reduce(0) { $0 + $1.payloadBytes })
    }

    /// The read half of a chunk. Between it and `write`, client writes and changelog deliveries
    /// can overtake the rows read: that is the race the version rule settles.
    func read(table: TableName, range: HashRange, after: ScanCursor?, limit: Int) async throws -> [StoredRow] {
        try await source.scan(table: table, range: range, after: after, limit: limit)
    }

    /// The write half: rows land on the target only where they are newer than what it holds.
    func write(_ rows: [StoredRow]) async throws {
        _ = try await target.apply(rows)
    }
}
