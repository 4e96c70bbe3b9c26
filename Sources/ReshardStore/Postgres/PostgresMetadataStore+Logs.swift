import Foundation
import PostgresNIO
import ReshardCore

/// Migration logs: a head row per log (its last position) and its entries.
///
/// An append and a drop take the head's row lock before anything else, so they are serialized
/// per log across every process, while reads and trims take no lock.
extension PostgresMetadataStore {
    public func openLogs(of migration: ChangeStreamID) async throws {
        let keys = MigrationLogID.Kind.allCases.map { MigrationLogID(migration: migration, kind: $0).rawValue }
        try await run { connection in
            _ = try await connection.query(
                """
                INSERT INTO reshard_meta_log_heads(log, last) SELECT key, 0 FROM unnest(\(keys)::text[]) AS k(key)
                ON CONFLICT (log) DO NOTHING
                """, logger: self.logger)
        }
    }

    public func appendToLog(_ log: MigrationLogID, _ bodies: [String], limit: Int) async throws -> UInt64? {
        guard try MigrationLogID.admits(bodies, limit: limit) else { return nil }
        let key = log.rawValue
        return try await inTransaction { connection -> UInt64? in
            // Locks the head before reading anything: a concurrent append waits here until this
            // one commits, then gets the last position this one committed (under READ COMMITTED
            // an updated row is re-read at its newest version), so positions follow commit order.
            // No head, no row: the log is not open (never opened, or dropped, perhaps meanwhile).
            let locked = try await Self.first(
                Int64.self,
                connection.query(
                    "UPDATE reshard_meta_log_heads SET last = last WHERE log = \(key) RETURNING last", logger: self.logger))
            guard let head = locked else { return nil }
            // A statement of its own, so it sees every entry committed before the lock was granted.
            let first = try await Self.first(
                Int64?.self,
                connection.query("SELECT min(position) FROM reshard_meta_log_entries WHERE log = \(key)", logger: self.logger))
            let status = try LogStatus.stored(log, last: head, first: first ?? nil)
            if bodies.isEmpty { return status.entries <= limit ? status.last : nil }
            // A refusal commits nothing new: the head existed already (a log without one holds no
            // entries, and `admits` has checked the bodies alone against `limit`).
            guard status.entries + bodies.count <= limit else { return nil }
            let last = try status.storedLast(appending: bodies.count, to: log)
            try await connection.query(
                """
                INSERT INTO reshard_meta_log_entries(log, position, body)
                SELECT \(key), \(head) + appended.ord, appended.body
                FROM unnest(\(bodies)::text[]) WITH ORDINALITY AS appended(body, ord)
                """, logger: self.logger)
            try await connection.query("UPDATE reshard_meta_log_heads SET last = \(last) WHERE log = \(key)", logger: self.logger)
            return UInt64(last)
        }
    }

    public func readLog(_ log: MigrationLogID, after position: UInt64, limit: Int) async throws -> [LogEntry] {
        let key = log.rawValue
        // No stored position reaches 2^63: clamping keeps the meaning of a larger one (nothing after it).
        let after = Int64(clamping: position)
        let count = Int64(MigrationLogID.clampedReadLimit(limit))
        let rows = try await run { connection in
            var rows: [(Int64, String)] = []
            let sequence = try await connection.query(
                """
                SELECT position, body FROM reshard_meta_log_entries
                WHERE log = \(key) AND position > \(after) ORDER BY position LIMIT \(count)
                """, logger: self.logger)
            for try await row in sequence.decode((Int64, String).self) { rows.append(row) }
            return rows
        }
        return try rows.map { position, body in try LogEntry.stored(log, position: position, body: body) }
    }

    public func trimLog(_ log: MigrationLogID, through position: UInt64) async throws {
        let (key, through) = (log.rawValue, Int64(clamping: position))
        try await run { connection in
            _ = try await connection.query(
                "DELETE FROM reshard_meta_log_entries WHERE log = \(key) AND position <= \(through)", logger: self.logger)
        }
    }

    public func logStatus(_ log: MigrationLogID) async throws -> LogStatus {
        let key = log.rawValue
        // One statement, so the head and the entries are read in one snapshot.
        let stored = try await run { connection in
            var stored: (last: Int64, first: Int64?)?
            let rows = try await connection.query(
                """
                SELECT coalesce((SELECT last FROM reshard_meta_log_heads WHERE log = \(key)), 0),
                       (SELECT min(position) FROM reshard_meta_log_entries WHERE log = \(key))
                """, logger: self.logger)
            for try await row in rows.decode((Int64, Int64?).self) { stored = row }
            return stored
        }
        guard let stored else { throw MetadataError.corrupt("log \(log) has no status") }
        return try LogStatus.stored(log, last: stored.last, first: stored.first)
    }

    public func dropLogs(of migration: ChangeStreamID) async throws {
        let keys = MigrationLogID.Kind.allCases.map { MigrationLogID(migration: migration, kind: $0).rawValue }
        try await inTransaction { connection in
            // Heads first: deleting one waits for an append holding its lock, and the entries are
            // deleted by a later statement, which sees what that append committed. The other way
            // round, an append's entries could outlive their head and collide with the positions
            // the log starts again from.
            try await connection.query("DELETE FROM reshard_meta_log_heads WHERE log = ANY(\(keys))", logger: self.logger)
            try await connection.query("DELETE FROM reshard_meta_log_entries WHERE log = ANY(\(keys))", logger: self.logger)
        }
    }
}
