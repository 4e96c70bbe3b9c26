import GRDB
import ReshardCore

/// Migration logs: a head per log (its last position) and its entries.
///
/// Every GRDB write is an IMMEDIATE transaction, which takes the file's one write lock before its
/// first read: appends through any number of handles or processes are serialized, so each one
/// reads the head another committed and positions follow commit order.
extension SQLiteMetadataStore {
    public func openLogs(of migration: ChangeStreamID) async throws {
        let keys = MigrationLogID.Kind.allCases.map { MigrationLogID(migration: migration, kind: $0).rawValue }
        try await pool.write { db in
            for key in keys { try db.execute(sql: "INSERT OR IGNORE INTO log_heads(log, last) VALUES(?, 0)", arguments: [key]) }
        }
    }

    public func appendToLog(_ log: MigrationLogID, _ bodies: [String], limit: Int) async throws -> UInt64? {
        guard try MigrationLogID.admits(bodies, limit: limit) else { return nil }
        let key = log.rawValue
        return try await pool.write { db -> UInt64? in
            // A log without a head is not open: never opened, or dropped.
            guard try Int64.fetchOne(db, sql: "SELECT last FROM log_heads WHERE log = ?", arguments: [key]) != nil else { return nil }
            let status = try Self.status(of: log, in: db)
            if bodies.isEmpty { return status.entries <= limit ? status.last : nil }
            guard status.entries + bodies.count <= limit else { return nil }
            let first = try status.storedLast(appending: 1, to: log)
            let last = try status.storedLast(appending: bodies.count, to: log)
            let insert = try db.cachedStatement(sql: "INSERT INTO log_entries(log, position, body) VALUES(?, ?, ?)")
            for (offset, body) in bodies.enumerated() {
                try insert.execute(arguments: [key, first + Int64(offset), body])
            }
            try db.execute(sql: "UPDATE log_heads SET last = ? WHERE log = ?", arguments: [last, key])
            return UInt64(last)
        }
    }

    public func readLog(_ log: MigrationLogID, after position: UInt64, limit: Int) async throws -> [LogEntry] {
        // No stored position reaches 2^63: clamping keeps the meaning of a larger one (nothing after it).
        let arguments: StatementArguments = [log.rawValue, Int64(clamping: position), MigrationLogID.clampedReadLimit(limit)]
        return try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT position, body FROM log_entries WHERE log = ? AND position > ? ORDER BY position LIMIT ?",
                arguments: arguments
            ).map { row in
                try LogEntry.stored(log, position: try row.decode(forColumn: "position"), body: try row.decode(forColumn: "body"))
            }
        }
    }

    public func trimLog(_ log: MigrationLogID, through position: UInt64) async throws {
        let arguments: StatementArguments = [log.rawValue, Int64(clamping: position)]
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM log_entries WHERE log = ? AND position <= ?", arguments: arguments)
        }
    }

    public func logStatus(_ log: MigrationLogID) async throws -> LogStatus {
        try await pool.read { db in try Self.status(of: log, in: db) }
    }

    public func dropLogs(of migration: ChangeStreamID) async throws {
        let keys = MigrationLogID.Kind.allCases.map { MigrationLogID(migration: migration, kind: $0).rawValue }
        let placeholders = Array(repeating: "?", count: keys.count).joined(separator: ", ")
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM log_heads WHERE log IN (\(placeholders))", arguments: StatementArguments(keys))
            try db.execute(sql: "DELETE FROM log_entries WHERE log IN (\(placeholders))", arguments: StatementArguments(keys))
        }
    }

    private static func status(of log: MigrationLogID, in db: Database) throws -> LogStatus {
        let last = try Int64.fetchOne(db, sql: "SELECT last FROM log_heads WHERE log = ?", arguments: [log.rawValue]) ?? 0
        let first = try Int64.fetchOne(db, sql: "SELECT min(position) FROM log_entries WHERE log = ?", arguments: [log.rawValue])
        return try LogStatus.stored(log, last: last, first: first)
    }
}
