import Foundation
import ReshardCore
import ReshardStore

/// A client write as a migration's logs keep it, in JSON: a failed second write in the `retry`
/// log, a recorded write in the `replay` log.
public struct LoggedWrite: Codable, Sendable, Hashable {
    /// The new owner the write was for.
    public var target: String
    public var table: String
    public var pk: String
    public var shardKey: String
    /// The version the old owner gave.
    public var version: UInt64
    /// The row's JSON object text; nil for a delete.
    public var body: String?
    /// The map generation the router wrote by (a rolled-back migration's fence refuses it).
    public var generation: UInt64

    enum CodingKeys: String, CodingKey {
        case target, table, pk, version, body, generation
        case shardKey = "shard_key"
    }

    /// The entry for `row`, meant for `target`, written by map `generation`.
    public init(_ row: StoredRow, target: ShardID, generation: UInt64) {
        self.target = target.rawValue
        table = row.table.rawValue
        pk = row.pk
        shardKey = row.shardKey
        version = row.version
        body = row.body
        self.generation = generation
    }

    /// The entry as the log stores it.
    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// An entry read back; nil when it is not one (an edited or foreign entry is skipped, and
    /// the changelog still carries the write it stood for).
    public static func decode(_ text: String) -> (row: StoredRow, target: ShardID, generation: UInt64)? {
        guard let entry = try? JSONDecoder().decode(LoggedWrite.self, from: Data(text.utf8)),
            let table = TableName(entry.table), let target = ShardID(entry.target), RowKey.problem(entry.pk) == nil,
            RowKey.problem(entry.shardKey) == nil
        else { return nil }
        let row = StoredRow(table: table, pk: entry.pk, shardKey: entry.shardKey, version: entry.version, body: entry.body)
        return (row, target, entry.generation)
    }
}

/// The migrator's side of the retry queue: retries failed second writes oldest first, trims what
/// went (or is obsolete), and reports what waits. It never throws: a failed pass is reported, and
/// the machine backs off and flags entries for reconciliation when passes keep failing.
struct SecondWriteQueue: Sendable {
    let log: MigrationLogID
    let metadata: any MetadataStore
    let stores: any StoreDirectory

    func retry(limit: Int) async -> MigrationEvent {
        var applied = 0
        var failure: String?
        do {
            var through: UInt64 = 0
            let entries = try await metadata.readLog(log, after: 0, limit: limit)
            for entry in entries {
                if let (row, target, generation) = LoggedWrite.decode(entry.body) {
                    do {
                        _ = try await stores.shardStore(target).writeSecond(row, routedBy: generation)
                    } catch let error as StoreError where error.fenceGeneration != nil {
                        // The copies are fenced (a rollback): nothing left to carry.
                    } catch {
                        failure = "\(error)"
                        break
                    }
                }
                applied += 1
                through = entry.position
            }
            if through > 0 { try await metadata.trimLog(log, through: through) }
            // A short read that went through took the whole queue as it stood: what came since
            // waits for the next pass, and the queue need not be counted again.
            let whole = failure == nil && entries.count < MigrationLogID.clampedReadLimit(limit)
            let waiting = whole ? 0 : try await metadata.logStatus(log).entries
            return .secondWritesRetried(applied: applied, waiting: waiting, error: failure)
        } catch {
            return .secondWritesRetried(applied: applied, waiting: 0, error: "\(error)")
        }
    }
}
