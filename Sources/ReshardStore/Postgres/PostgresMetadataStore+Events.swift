import Foundation
import PostgresNIO
import ReshardCore

/// The cluster's event log: a one-row head (the last position ever appended) and the newest
/// events. An append takes the head's row lock first, so appends are serialized across every
/// process while reads take no lock.
extension PostgresMetadataStore {
    public func events(after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        // No stored position reaches 2^63: clamping keeps the meaning of a larger one (nothing after it).
        let after = Int64(clamping: position)
        let count = Int64(MetadataEvent.clampedReadLimit(limit))
        let rows = try await run { connection in
            var rows: [(Int64, Int64, String)] = []
            let sequence = try await connection.query(
                """
                SELECT position, at_ms, body FROM reshard_meta_events
                WHERE position > \(after) ORDER BY position LIMIT \(count)
                """, logger: self.logger)
            for try await row in sequence.decode((Int64, Int64, String).self) { rows.append(row) }
            return rows
        }
        return try rows.map { position, at, body in try StoredEvents.decode(position: position, atMillis: at, body: body) }
    }

    public func recordEvent(_ event: MetadataEvent) async throws -> UInt64 {
        let body = try MetadataJSON.encode(event)
        return try await inTransaction { connection in try await self.appendEvent(body, on: connection) }
    }

    public func eventBounds() async throws -> (first: UInt64, last: UInt64) {
        // One statement, so the head and the events are read in one snapshot.
        let stored = try await run { connection in
            var stored: (last: Int64, first: Int64?)?
            let rows = try await connection.query(
                """
                SELECT coalesce((SELECT last FROM reshard_meta_event_head WHERE id = 1), 0),
                       (SELECT min(position) FROM reshard_meta_events)
                """, logger: self.logger)
            for try await row in rows.decode((Int64, Int64?).self) { stored = row }
            return stored
        }
        guard let stored else { throw MetadataError.corrupt("the event log has no bounds") }
        return try StoredEvents.bounds(last: stored.last, first: stored.first)
    }

    /// Appends `body` (an encoded `MetadataEvent`) in the transaction open on `connection`, trims
    /// what falls out of the newest `eventsRetained` and notifies `.events`, delivered on commit
    /// only; its position.
    func appendEvent(_ body: String, on connection: PostgresConnection, alsoNotifying also: MetadataChange? = nil) async throws
        -> UInt64
    {
        // Taking the head's row lock is the first thing: a concurrent append waits here until this
        // one commits, then gets the position this one committed (under READ COMMITTED an updated
        // row is re-read at its newest version), so positions follow commit order. Every writer
        // takes this lock last (after the maps' table lock or a table's row), so appends cannot
        // deadlock with each other.
        let locked = try await Self.first(
            Int64.self,
            connection.query("UPDATE reshard_meta_event_head SET last = last + 1 WHERE id = 1 RETURNING last", logger: self.logger))
        guard let position = locked else { throw MetadataError.corrupt("the event log has no head") }
        guard position >= 1 else { throw MetadataError.corrupt("the event log's last position is \(position - 1)") }
        let trimmed = position - Int64(eventsRetained)
        // The server's clock, as for reports: one clock stamps every process's events. The
        // notifications go in the same statement (one round trip less inside a cutover's hold),
        // `.events` first: whoever hears the other kind has heard both.
        // (PostgreSQL delivers one of identical notifications of a transaction, so naming
        // `.events` twice when there is no other kind is harmless.)
        let events = MetadataChange.events.rawValue
        let other = (also ?? .events).rawValue
        try await connection.query(
            """
            WITH trimmed AS (DELETE FROM reshard_meta_events WHERE position <= \(trimmed)),
            inserted AS (
                INSERT INTO reshard_meta_events(position, at_ms, body)
                VALUES(\(position), (extract(epoch FROM clock_timestamp()) * 1000)::bigint, \(body)) RETURNING position)
            SELECT pg_notify(\(Self.channel), \(events)), pg_notify(\(Self.channel), \(other)) FROM inserted
            """, logger: self.logger)
        return UInt64(position)
    }
}
