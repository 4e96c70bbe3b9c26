import Foundation
import PostgresNIO
import ReshardCore

/// How a PostgreSQL shard captures its changes.
public enum PostgresChangeCapture: Sendable, Hashable, CustomStringConvertible {
    /// Logical decoding: a `test_decoding` slot per stream (needs `wal_level = logical`).
    case logicalDecoding
    /// A changelog table fed by statement triggers on every data table, for servers whose
    /// `wal_level` is not `logical` (it cannot change without a restart). `walLevel` is what the
    /// server has, for status.
    case triggers(walLevel: String)

    public var description: String {
        switch self {
        case .logicalDecoding: "logical decoding (test_decoding)"
        case .triggers(let level): "triggers (wal_level is \(level), not logical)"
        }
    }
}

/// The trigger-fed changelog.
///
/// Each data table has two statement triggers (after INSERT, after UPDATE) that copy the rows a
/// statement wrote, from its transition table, into `_reshard_changes` while any stream is open.
/// A change's position is its `seq` from one sequence. Sequence numbers are handed out in
/// statement order, not commit order, so a reader may not read past a number whose transaction
/// is still open: the triggers take `_reshard_fences` in ROW SHARE mode before they draw a
/// number (client writes hold it already), and a reader finds its safe head by taking the table
/// in EXCLUSIVE mode for a moment, which waits for every such transaction to end. Every number
/// at or below the head read then belongs to a transaction that committed or rolled back.
/// Physical deletes (cleanup, garbage collection, repair) have no trigger: they are not client
/// changes, as on SQLite and in the logical-decoding reader.
extension PostgresShardStore {
    /// What the server's `wal_level` and this database's open trigger streams call for: a
    /// migration that started on triggers keeps them, even if the server now decodes logically.
    static func detectCapture(_ connection: PostgresConnection, logger: Logger) async throws -> PostgresChangeCapture {
        var level = "logical"
        var triggerStreams = false
        let rows = try await connection.query(
            "SELECT current_setting('wal_level'), to_regclass('_reshard_streams') IS NOT NULL", logger: logger)
        for try await (found, streamsTable) in rows.decode((String, Bool).self) {
            level = found
            triggerStreams = streamsTable
        }
        if level != "logical" { return .triggers(walLevel: level) }
        if triggerStreams {
            var open = 0
            for try await count in try await connection.query("SELECT count(*) FROM _reshard_streams", logger: logger).decode(Int64.self) {
                open = Int(count)
            }
            if open > 0 { return .triggers(walLevel: level) }
        }
        return .logicalDecoding
    }

    /// The changelog's tables and trigger function, and the triggers of every existing table.
    /// In logical mode, a changelog left from an earlier life on triggers is removed (its streams
    /// are all closed, or the mode would still be triggers).
    static func prepareChangelog(_ connection: PostgresConnection, capture: PostgresChangeCapture, logger: Logger) async throws {
        guard case .triggers = capture else {
            // Only where a changelog was ever made: every router opens every shard at start.
            var leftover = false
            for try await found in try await connection.query("SELECT to_regclass('_reshard_streams') IS NOT NULL", logger: logger)
                .decode(Bool.self)
            { leftover = found }
            guard leftover else { return }
            try await connection.query("DROP FUNCTION IF EXISTS _reshard_log_changes() CASCADE", logger: logger)
            try await connection.query("DROP TABLE IF EXISTS _reshard_changes, _reshard_streams", logger: logger)
            try await connection.query("DROP SEQUENCE IF EXISTS _reshard_changes_seq", logger: logger)
            return
        }
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS _reshard_streams(name text COLLATE "C" PRIMARY KEY)
            """, logger: logger)
        try await connection.query("CREATE SEQUENCE IF NOT EXISTS _reshard_changes_seq", logger: logger)
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS _reshard_changes(
                seq bigint PRIMARY KEY DEFAULT nextval('_reshard_changes_seq'), tbl text NOT NULL, pk text NOT NULL,
                skey text NOT NULL, version bigint NOT NULL, body text, at_ms bigint NOT NULL)
            """, logger: logger)
        try await connection.query(
            """
            CREATE OR REPLACE FUNCTION _reshard_log_changes() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                LOCK TABLE _reshard_fences IN ROW SHARE MODE;
                IF EXISTS (SELECT 1 FROM _reshard_streams) THEN
                    INSERT INTO _reshard_changes(tbl, pk, skey, version, body, at_ms)
                    SELECT TG_ARGV[0], pk, skey, version, body, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                    FROM reshard_written;
                END IF;
                RETURN NULL;
            END $$
            """, logger: logger)
        var tables: [TableName] = []
        for try await name in try await connection.query("SELECT name FROM _reshard_tables", logger: logger).decode(String.self) {
            if let table = TableName(name) { tables.append(table) }
        }
        for table in tables { try await installTriggers(connection, table: table, logger: logger) }
    }

    /// The triggers that log `table`'s inserts and updates, where missing (creating one locks
    /// the table against writes for a moment, so a router's start does not redo them).
    static func installTriggers(_ connection: PostgresConnection, table: TableName, logger: Logger) async throws {
        let raw = table.rawValue
        var present: Set<String> = []
        let existing = try await connection.query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = to_regclass(\("r_" + raw))", logger: logger)
        for try await name in existing.decode(String.self) { present.insert(name) }
        for event in ["INSERT", "UPDATE"] where !present.contains("r_\(raw)_cdc_\(event.lowercased())") {
            let trigger = "\"r_\(raw)_cdc_\(event.lowercased())\""
            // `TableName` admits only `[a-z0-9_]`: the names and the literal need no escaping.
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TRIGGER \(trigger) AFTER \(event) ON \(quoted(table)) REFERENCING NEW TABLE AS reshard_written
                        FOR EACH STATEMENT EXECUTE FUNCTION _reshard_log_changes('\(raw)')
                        """), logger: logger)
        }
    }

    /// The highest sequence number handed out; with `_reshard_fences` held in EXCLUSIVE mode by
    /// the caller's transaction, every change at or below it has committed or rolled back.
    static func changelogHead(_ connection: PostgresConnection, logger: Logger) async throws -> UInt64 {
        try await position(connection.query(PostgresQuery(unsafeSQL: "SELECT \(changelogHeadExpression)"), logger: logger))
    }

    static let changelogHeadExpression = "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM _reshard_changes_seq)"

    /// The safe head, read under a brief barrier (client writes wait for one round trip).
    func triggerHead() async throws -> UInt64 {
        try await pool.transaction { connection in
            try await connection.query("LOCK TABLE _reshard_fences IN EXCLUSIVE MODE", logger: self.logger)
            return try await Self.changelogHead(connection, logger: self.logger)
        }
    }

    func openTriggerStream(_ stream: ChangeStreamID) async throws -> UInt64 {
        try await pool.transaction { connection in
            // Under the barrier, so every write either committed before the stream existed (a
            // copy that starts later sees it) or logs itself once it gets the lock.
            try await connection.query("LOCK TABLE _reshard_fences IN EXCLUSIVE MODE", logger: self.logger)
            try await connection.query(
                "INSERT INTO _reshard_streams(name) VALUES(\(stream.rawValue)) ON CONFLICT DO NOTHING", logger: self.logger)
            return try await Self.changelogHead(connection, logger: self.logger)
        }
    }

    func triggerChanges(after position: UInt64, through: UInt64?, limit: Int) async throws -> ChangeBatch {
        let head = try await triggerHead()
        let upper = min(head, through ?? .max)
        guard upper > position else { return ChangeBatch(changes: [], position: position, backlog: 0, oldestPendingMillis: nil) }
        let (changes, oldest) = try await pool.withConnection { connection in
            var changes: [Change] = []
            let rows = try await connection.query(
                """
                SELECT seq, tbl, pk, skey, version, body, at_ms FROM _reshard_changes
                WHERE seq > \(Int64(bitPattern: position)) AND seq <= \(Int64(bitPattern: upper)) ORDER BY seq
                LIMIT \(Int64(limit))
                """, logger: self.logger)
            for try await (seq, tbl, pk, skey, version, body, at) in rows.decode(
                (Int64, String, String, String, Int64, String?, Int64).self)
            {
                guard let table = TableName(tbl) else { continue }
                let row = StoredRow(table: table, pk: pk, shardKey: skey, version: UInt64(bitPattern: version), body: body)
                changes.append(Change(position: UInt64(bitPattern: seq), row: row, atMillis: UInt64(max(0, at))))
            }
            var oldest: Int64?
            if changes.count >= limit, let last = changes.last {
                let next = try await connection.query(
                    "SELECT min(at_ms) FROM _reshard_changes WHERE seq > \(Int64(bitPattern: last.position)) AND seq <= \(Int64(bitPattern: upper))",
                    logger: self.logger)
                for try await value in next.decode(Int64?.self) { oldest = value }
            }
            return (changes, oldest)
        }
        let reached = changes.count < limit ? upper : changes.last?.position ?? position
        let backlog = head > reached ? Int(clamping: head - reached) : 0
        return ChangeBatch(
            changes: changes, position: reached, backlog: backlog, oldestPendingMillis: oldest.map { UInt64(max(0, $0)) })
    }

    func closeTriggerStream(_ stream: ChangeStreamID) async throws {
        try await pool.transaction { connection in
            try await connection.query("DELETE FROM _reshard_streams WHERE name = \(stream.rawValue)", logger: self.logger)
            // The last reader gone, nothing will read what is logged: the triggers stop logging
            // (they check for a stream) and the log is emptied.
            try await connection.query(
                "DELETE FROM _reshard_changes WHERE NOT EXISTS (SELECT 1 FROM _reshard_streams)", logger: self.logger)
        }
    }

    func triggerStreams() async throws -> [ChangeStreamID] {
        try await pool.withConnection { connection in
            var streams: [ChangeStreamID] = []
            for try await name in try await connection.query("SELECT name FROM _reshard_streams ORDER BY name", logger: self.logger)
                .decode(String.self)
            {
                if let stream = ChangeStreamID(name) { streams.append(stream) }
            }
            return streams
        }
    }

    func purgeTriggerChanges(through position: UInt64) async throws {
        try await pool.withConnection { connection in
            try await connection.query("DELETE FROM _reshard_changes WHERE seq <= \(Int64(bitPattern: position))", logger: self.logger)
        }
    }
}
