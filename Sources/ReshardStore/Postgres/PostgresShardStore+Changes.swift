import Foundation
import PostgresNIO
import ReshardCore

/// Change streams by logical decoding, and reads at an exact changelog position.
///
/// A stream is a logical replication slot with the built-in `test_decoding` plugin, read through
/// SQL (`pg_logical_slot_peek_changes`; PostgresNIO does not speak the replication protocol).
/// Positions are WAL positions (LSNs): a change's position is the end of its transaction's
/// commit record, so positions follow commit order and a transaction is never split. Peeking
/// does not consume; the slot is advanced to the position a reader asks to read after, because
/// asking means everything before it has been applied.
extension PostgresShardStore {
    public func changeCapture() async throws -> String { capture.description }

    public func openChangeStream(_ stream: ChangeStreamID) async throws -> UInt64 {
        if usesTriggers { return try await openTriggerStream(stream) }
        let slot = slotName(stream)
        do {
            return try await pool.withConnection { connection in
                let rows = try await connection.query(
                    "SELECT (lsn - '0/0')::bigint FROM pg_create_logical_replication_slot(\(slot), 'test_decoding')", logger: self.logger)
                return try await Self.position(rows)
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42710" {
            // The slot exists (a retried prepare): it delivers every change after its position.
            return try await pool.withConnection { connection in
                let rows = try await connection.query(
                    "SELECT (confirmed_flush_lsn - '0/0')::bigint FROM pg_replication_slots WHERE slot_name = \(slot)", logger: self.logger)
                return try await Self.position(rows)
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55000" {
            throw StoreError.backend(
                "shard \(shardID) cannot open a change stream: \(Self.message(error)) (set wal_level = logical and restart the server)")
        } catch let error as PSQLError {
            throw StoreError.backend("shard \(shardID) cannot open change stream \(stream): \(Self.message(error))")
        }
    }

    public func changes(_ stream: ChangeStreamID, after position: UInt64, through: UInt64?, limit: Int) async throws -> ChangeBatch {
        if usesTriggers { return try await triggerChanges(after: position, through: through, limit: limit) }
        let slot = slotName(stream)
        // A drain runs while client writes are held, so it is one round trip that only reads;
        // the tails before it look after the slot.
        var batch = try await peek(slot, stream: stream, after: position, through: through, limit: limit, maintain: through == nil)
        if batch.stalled {
            // Someone read past the slot's confirmed point without moving it (a verification's
            // drain reads with a bound too): a full batch of changes already applied would be
            // peeked again on every read and nothing after them ever reached.
            batch = try await peek(slot, stream: stream, after: position, through: through, limit: limit, maintain: true)
        }
        return batch.changes
    }

    /// One peek of the slot after `position`; `stalled` when a full batch held nothing after it.
    private func peek(_ slot: String, stream: ChangeStreamID, after position: UInt64, through: UInt64?, limit: Int, maintain: Bool)
        async throws -> (changes: ChangeBatch, stalled: Bool)
    {
        let upto = through.map { Self.lsnText($0) }
        let (flush, lines) = try await pool.withConnection { connection in
            if maintain { try await self.maintainSlot(connection, slot: slot, stream: stream, after: position) }
            // The flush point is read first (the peek's bound depends on it): every transaction
            // committed at or before it is decoded, whatever commits while the peek runs.
            let rows = try await connection.query(
                """
                WITH f AS MATERIALIZED (SELECT pg_current_wal_flush_lsn() AS flush)
                SELECT (f.flush - '0/0')::bigint, (c.lsn - '0/0')::bigint, c.data FROM f LEFT JOIN LATERAL pg_logical_slot_peek_changes(
                    \(slot), least(f.flush, \(upto)::pg_lsn), \(Int32(clamping: limit)),
                    'include-timestamp', 'on', 'skip-empty-xacts', 'on', 'include-xids', 'off') AS c ON true
                """, logger: self.logger)
            var flush: Int64?
            var lines: [(Int64, String)] = []
            for try await (head, lsn, data) in rows.decode((Int64, Int64?, String?).self) {
                flush = head
                if let lsn, let data { lines.append((lsn, data)) }
            }
            guard let flush else { throw StoreError.backend("no WAL flush position was returned") }
            return (UInt64(bitPattern: flush), lines)
        }
        var changes: [Change] = []
        var open: [StoredRow] = []
        var lastCommit: UInt64?
        for (lsn, data) in lines {
            switch try TestDecodingParser.parse(data) {
            case .begin: open = []
            case .row(let row): open.append(row)
            case .commit(let atMillis):
                let commit = UInt64(bitPattern: lsn)
                // The reader may run past `through` by one record; what commits after it waits.
                guard commit > position, through.map({ commit <= $0 }) ?? true else {
                    open = []
                    continue
                }
                changes += open.map { Change(position: commit, row: $0, atMillis: atMillis) }
                lastCommit = commit
                open = []
            case .ignored: continue
            }
        }
        let limited = lines.count >= limit
        var reached = position
        if limited {
            reached = max(position, lastCommit ?? position)
        } else {
            // Every transaction committed before the flush point was decoded.
            reached = max(position, min(flush, through ?? .max))
        }
        let batch = ChangeBatch(
            changes: changes, position: reached, backlog: limited ? max(1, changes.count) : 0,
            oldestPendingMillis: limited ? changes.last?.atMillis : nil)
        return (batch, limited && lastCommit == nil && !maintain)
    }

    /// Checks that the stream is open, lets the slot free what was applied (everything up to
    /// `after`), and nudges its restart point when it lags.
    private func maintainSlot(_ connection: PostgresConnection, slot: String, stream: ChangeStreamID, after position: UInt64) async throws {
        let after = Int64(bitPattern: position)
        let state = try await connection.query(
            """
            SELECT (pg_current_wal_flush_lsn() - '0/0')::bigint, (confirmed_flush_lsn - '0/0')::bigint,
                (pg_current_wal_lsn() - restart_lsn)::bigint
            FROM pg_replication_slots WHERE slot_name = \(slot)
            """, logger: logger)
        var found: (Int64, Int64?, Int64?)?
        for try await row in state.decode((Int64, Int64?, Int64?).self) { found = row }
        guard let (flush, confirmed, restartLag) = found else {
            throw StoreError.backend("change stream \(stream) is not open on shard \(shardID)")
        }
        if let restartLag, restartLag > Self.restartLagToNudge { nudgeRestartPoint() }
        if let confirmed, confirmed < after, after <= flush {
            try await connection.query("SELECT pg_replication_slot_advance(\(slot), \(Self.lsnText(position))::pg_lsn)", logger: logger)
        }
    }

    /// WAL behind a slot's restart point past which a read asks the server for a new one.
    static let restartLagToNudge: Int64 = 256 << 10

    /// Every read of a slot decodes the WAL from the slot's restart point, and that point only
    /// moves when decoding meets a running-transactions record, which the server writes every
    /// 15 s: on a busy server each read, a cutover's drain included, would re-decode up to 15 s
    /// of WAL (94 ms for 19 MB, measured). So a read that finds the restart point far behind asks
    /// for such a record, at most once a second, in the background: PostgreSQL 16 and later have
    /// `pg_log_standby_snapshot()`; before that, starting to create a temporary logical slot
    /// writes one at once, and the creation is cut short after 200 ms.
    func nudgeRestartPoint() {
        let now = ContinuousClock.now
        let due = lastNudge.withLock { last -> Bool in
            if let last, now - last < .seconds(1) { return false }
            last = now
            return true
        }
        guard due else { return }
        let pool = pool
        let logger = logger
        Task {
            do {
                try await pool.withConnection { connection in
                    var version: Int32 = 0
                    for try await found in try await connection.query("SELECT current_setting('server_version_num')::int", logger: logger)
                        .decode(Int32.self)
                    { version = found }
                    if version >= 160_000 {
                        try await connection.query("SELECT pg_log_standby_snapshot()", logger: logger)
                        return
                    }
                    let name = "reshard_nudge_" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
                    try await connection.query("SET statement_timeout = 200", logger: logger)
                    do {
                        try await connection.query(
                            "SELECT pg_create_logical_replication_slot(\(name), 'test_decoding', true)", logger: logger)
                        try await connection.query("SELECT pg_drop_replication_slot(\(name))", logger: logger)
                    } catch {
                        // Cut short while it waited for running transactions: the record is written.
                    }
                    try await connection.query("SET statement_timeout = 0", logger: logger)
                }
            } catch {
                logger.debug("could not nudge the WAL decoding restart point", metadata: ["error": "\(error)"])
            }
        }
    }

    public func closeChangeStream(_ stream: ChangeStreamID) async throws {
        if usesTriggers { return try await closeTriggerStream(stream) }
        let slot = slotName(stream)
        var attempt = 0
        while true {
            do {
                try await pool.withConnection { connection in
                    try await connection.query(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = \(slot)",
                        logger: self.logger)
                }
                return
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" && attempt < 20 {
                // The slot is in use by a read that is finishing.
                attempt += 1
                try await Task.sleep(for: .milliseconds(50))
            } catch let error as PSQLError {
                throw StoreError.backend("shard \(shardID) cannot close change stream \(stream): \(Self.message(error))")
            }
        }
    }

    public func changeStreams() async throws -> [ChangeStreamID] {
        if usesTriggers { return try await triggerStreams() }
        let suffix = slotSuffix
        return try await pool.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT slot_name::text FROM pg_replication_slots
                WHERE database = current_database() AND slot_name LIKE 'reshard\\_%' ORDER BY slot_name
                """, logger: self.logger)
            var streams: [ChangeStreamID] = []
            for try await name in rows.decode(String.self) where name.hasSuffix(suffix) {
                let middle = name.dropFirst("reshard_".count).dropLast(suffix.count)
                if let stream = ChangeStreamID(String(middle)) { streams.append(stream) }
            }
            return streams
        }
    }

    public func changePosition() async throws -> UInt64 {
        if usesTriggers { return try await triggerHead() }
        return try await pool.withConnection { connection in try await Self.walPosition(connection, logger: self.logger) }
    }

    /// A slot keeps what it has not consumed, so only the trigger-fed changelog is purged.
    public func purgeChanges(through position: UInt64) async throws {
        if usesTriggers { try await purgeTriggerChanges(through: position) }
    }

    public func summarize(_ request: SummaryRequest) async throws -> SnapshotSummary {
        try await atBarrier { connection, position in
            var summaries: [TableName: [[RangeSummary]]] = [:]
            for table in request.tables {
                var perRange: [[RangeSummary]] = []
                for range in request.ranges {
                    perRange.append(
                        try await Self.subrangeSummaries(connection, table: table, range: range, parts: request.parts, logger: self.logger))
                }
                summaries[table] = perRange
            }
            var aggregates: [AggregateCheck: [AggregateSummary]] = [:]
            for check in request.checks {
                var perRange: [AggregateSummary] = []
                for range in request.ranges { perRange.append(try await self.aggregate(connection, check: check, range: range)) }
                aggregates[check] = perRange
            }
            return SnapshotSummary(position: position, summaries: summaries, aggregates: aggregates)
        }
    }

    public func snapshotScan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> RowsAtPosition {
        let query = Self.scanQuery(table: table, range: range, after: cursor, limit: limit)
        do {
            return try await atBarrier { connection, position in
                RowsAtPosition(
                    position: position, rows: try await Self.decodeRows(connection.query(query, logger: self.logger), table: table))
            }
        } catch  where Self.isUndefinedTable(error) {
            throw StoreError.unknownTable(table)
        }
    }

    /// Runs `body` in a snapshot that holds exactly the changes at or before the position it is
    /// given. A first transaction takes the fence table in EXCLUSIVE mode, which waits for every
    /// client write in flight to commit and become visible and admits no new one; it reads the
    /// WAL position and exports its snapshot, which a second connection adopts before the first
    /// commits. Client writes are held only for those few round trips, not for the reads.
    private func atBarrier<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, UInt64) async throws -> T) async throws -> T {
        let pool = pool
        let logger = logger
        return try await snapshotLock.withLock {
            try await pool.withConnection { reader in
                try await reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                do {
                    let position = try await pool.transaction("ISOLATION LEVEL REPEATABLE READ") { barrier in
                        try await barrier.query("LOCK TABLE _reshard_fences IN EXCLUSIVE MODE", logger: logger)
                        // An xid and a synchronous commit flush the WAL through the position, so a
                        // drain to it does not wait for the WAL writer.
                        try await barrier.query("SET LOCAL synchronous_commit = on", logger: logger)
                        // The position in the statement that exports the snapshot: nothing that does not
                        // wait for the lock (a copy into this shard) can commit between the two.
                        let rows = try await barrier.query(
                            PostgresQuery(unsafeSQL: "SELECT \(self.positionExpression), pg_export_snapshot(), txid_current()"),
                            logger: logger)
                        var exported: (Int64, String, Int64)?
                        for try await row in rows.decode((Int64, String, Int64).self) { exported = row }
                        guard let (position, snapshot, _) = exported, snapshot.utf8.allSatisfy({ Self.snapshotIDBytes.contains($0) }) else {
                            throw StoreError.backend("no snapshot was exported")
                        }
                        // Adopted while the exporting transaction is still open, as PostgreSQL requires;
                        // the id was checked to be hexadecimal digits and dashes.
                        try await reader.query(PostgresQuery(unsafeSQL: "SET TRANSACTION SNAPSHOT '\(snapshot)'"), logger: logger)
                        return UInt64(bitPattern: position)
                    }
                    let result = try await body(reader, position)
                    try await reader.query("COMMIT", logger: logger)
                    return result
                } catch {
                    _ = try? await reader.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    private static let snapshotIDBytes = Set("0123456789ABCDEF-".utf8)

    static func walPosition(_ connection: PostgresConnection, logger: Logger) async throws -> UInt64 {
        try await position(connection.query("SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint", logger: logger))
    }

    static func position(_ rows: PostgresRowSequence) async throws -> UInt64 {
        var found: Int64?
        for try await value in rows.decode(Int64.self) { found = value }
        guard let found else { throw StoreError.backend("no WAL position was returned") }
        return UInt64(bitPattern: found)
    }

    /// An LSN as PostgreSQL writes it, `HI/LO` in hexadecimal.
    static func lsnText(_ position: UInt64) -> String {
        String(position >> 32, radix: 16, uppercase: true) + "/" + String(position & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    /// The slot of `stream` on this database: slot names are global to a server, so the name
    /// carries a digest of the database name as well as the stream.
    func slotName(_ stream: ChangeStreamID) -> String { "reshard_" + stream.rawValue + slotSuffix }

    var slotSuffix: String {
        let hex = String(XXHash64.hash(Array(pool.endpoint.database.utf8)), radix: 16)
        return "_" + (String(repeating: "0", count: 16 - hex.count) + hex).prefix(12)
    }
}
