import Foundation
import GRDB
import ReshardCore

/// Change streams over the trigger-fed changelog.
extension SQLiteShardStore {
    public func changeCapture() async throws -> String { "triggers" }

    /// Every stream reads the one trigger-fed changelog: a stream is only its name (for the
    /// sweep) and its start.
    public func openChangeStream(_ stream: ChangeStreamID) async throws -> UInt64 {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO _reshard_streams(name) VALUES(?)", arguments: [stream.rawValue])
            return try Self.changePosition(db)
        }
    }

    public func changes(_ stream: ChangeStreamID, after position: UInt64, through: UInt64?, limit: Int) async throws -> ChangeBatch {
        // One read transaction: the head, the batch and the backlog agree. Writes are serialised
        // by SQLite, so positions are assigned in commit order and reading past one is safe.
        try await pool.read { db in
            let head = try Self.changePosition(db)
            let upper = min(head, through ?? .max)
            let changes = try Row.fetchAll(
                db,
                sql: """
                    SELECT position, tbl, pk, skey, version, body, at_ms FROM _reshard_changelog
                    WHERE position > ? AND position <= ? ORDER BY position LIMIT ?
                    """,
                arguments: [Int64(bitPattern: position), Int64(bitPattern: upper), limit]
            ).compactMap { row -> Change? in
                guard let table = TableName(try row.decode(forColumn: "tbl")) else { return nil }
                return Change(
                    position: UInt64(bitPattern: try row.decode(Int64.self, forColumn: "position")),
                    row: try Self.storedRow(row, table: table),
                    atMillis: UInt64(max(0, try row.decode(Int64.self, forColumn: "at_ms")))
                )
            }
            let reached = changes.count < limit ? max(position, upper) : changes.last?.position ?? position
            let backlog = head > reached ? Int(head - reached) : 0
            let oldest =
                backlog > 0
                ? try Int64.fetchOne(
                    db, sql: "SELECT at_ms FROM _reshard_changelog WHERE position > ? ORDER BY position LIMIT 1",
                    arguments: [Int64(bitPattern: reached)]) : nil
            return ChangeBatch(
                changes: changes, position: reached, backlog: backlog, oldestPendingMillis: oldest.map { UInt64(max(0, $0)) })
        }
    }

    public func closeChangeStream(_ stream: ChangeStreamID) async throws {
        try await pool.write { db in try db.execute(sql: "DELETE FROM _reshard_streams WHERE name = ?", arguments: [stream.rawValue]) }
    }

    public func changeStreams() async throws -> [ChangeStreamID] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM _reshard_streams ORDER BY name").compactMap(ChangeStreamID.init)
        }
    }

    public func changePosition() async throws -> UInt64 {
        try await pool.read { db in try Self.changePosition(db) }
    }

    public func purgeChanges(through position: UInt64) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM _reshard_changelog WHERE position <= ?", arguments: [Int64(bitPattern: position)])
        }
    }

    static func changePosition(_ db: Database) throws -> UInt64 {
        // sqlite_sequence keeps the high-water mark even after the changelog is purged.
        let position = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = '_reshard_changelog'")
        return UInt64(max(0, position ?? 0))
    }
}
