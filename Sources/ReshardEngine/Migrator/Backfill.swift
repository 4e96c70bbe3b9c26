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
        let rows = try await source.scan(table: table, range: range, after: after, limit: limit)
        _ = try await target.apply(rows)
        let last = rows.last.map { ScanCursor(hash: $0.hash, pk: $0.pk) } ?? after
        return .chunkCopied(task: task, last: last, rows: rows.count, done: rows.count < limit)
    }
}
