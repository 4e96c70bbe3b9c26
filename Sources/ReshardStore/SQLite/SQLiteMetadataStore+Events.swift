import Foundation
import GRDB
import ReshardCore

/// The cluster's event log: a one-row head (the last position ever appended) and the newest
/// events. Every GRDB write is an IMMEDIATE transaction holding the file's one write lock, so
/// appends from any handle or process are serialized and positions follow commit order.
extension SQLiteMetadataStore {
    public func events(after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        // No stored position reaches 2^63: clamping keeps the meaning of a larger one (nothing after it).
        let arguments: StatementArguments = [Int64(clamping: position), MetadataEvent.clampedReadLimit(limit)]
        return try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT position, at_ms, body FROM events WHERE position > ? ORDER BY position LIMIT ?",
                arguments: arguments
            ).map { row in
                try StoredEvents.decode(
                    position: try row.decode(forColumn: "position"), atMillis: try row.decode(forColumn: "at_ms"),
                    body: try row.decode(forColumn: "body"))
            }
        }
    }

    public func recordEvent(_ event: MetadataEvent) async throws -> UInt64 {
        let body = try MetadataJSON.encode(event)
        let position = try await pool.write { db in try self.appendEvent(body, in: db) }
        watchers.yield(.events)
        return position
    }

    public func eventBounds() async throws -> (first: UInt64, last: UInt64) {
        try await pool.read { db in
            let last = try Int64.fetchOne(db, sql: "SELECT last FROM event_head WHERE id = 1") ?? 0
            let first = try Int64.fetchOne(db, sql: "SELECT min(position) FROM events")
            return try StoredEvents.bounds(last: last, first: first)
        }
    }

    /// Appends `body` (an encoded `MetadataEvent`) in the write transaction `db` and trims what
    /// falls out of the newest `eventsRetained`; its position. The caller tells watchers once `db`
    /// has committed.
    func appendEvent(_ body: String, in db: Database) throws -> UInt64 {
        guard let last = try Int64.fetchOne(db, sql: "SELECT last FROM event_head WHERE id = 1") else {
            throw MetadataError.corrupt("the event log has no head")
        }
        let position = try StoredEvents.next(after: last)
        // The store's clock, read under the write lock: the time the event was stored, not when
        // its writer began to wait.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try db.execute(sql: "INSERT INTO events(position, at_ms, body) VALUES(?, ?, ?)", arguments: [position, now, body])
        try db.execute(sql: "UPDATE event_head SET last = ? WHERE id = 1", arguments: [position])
        try db.execute(sql: "DELETE FROM events WHERE position <= ?", arguments: [position - Int64(eventsRetained)])
        return UInt64(position)
    }
}
