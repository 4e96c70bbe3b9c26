import Foundation
import GRDB
import Logging
import ReshardCore
import Synchronization

/// A shard in one SQLite file (WAL mode), through GRDB.
///
/// Each table `t` is stored as `"r_t"` with `(pk, skey, h, version, body, digest)`; `h` is the
/// order-preserving signed form of the key hash so the `(h, pk)` index serves range scans, and
/// `digest` is the row digest so checksums are computed by SQLite. Triggers copy every row
/// image a client writes into `_reshard_changelog` (not the migrator's `apply`). Physical
/// deletes (cleanup of moved ranges, tombstone purge) have no trigger on purpose: they are not
/// client changes and must never replicate to another shard.
public final class SQLiteShardStore: ShardStore {
    /// The shard this file serves.
    public let shardID: ShardID
    /// The database file.
    public let path: String
    private let pool: DatabasePool
    private let checkpointer: WALCheckpointer
    private let applies = ApplyQueue()

    /// Opens (creating if needed) the shard file at `path`.
    public init(shardID: ShardID, path: String) throws {
        self.shardID = shardID
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // WAL (set by DatabasePool) with synchronous=NORMAL survives process crashes without
            // an fsync per commit; a power loss may lose the last commits, as with any WAL setup.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Checkpoints run off the write path, in WALCheckpointer.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        checkpointer = try WALCheckpointer(path: path, writer: pool, logger: Logger(label: "reshard.sqlite"))
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-shard") { db in
            try db.execute(
                sql: """
                    CREATE TABLE _reshard_tables(name TEXT PRIMARY KEY NOT NULL);
                    CREATE TABLE _reshard_changelog(
                        position INTEGER PRIMARY KEY AUTOINCREMENT,
                        tbl TEXT NOT NULL, pk TEXT NOT NULL, skey TEXT NOT NULL,
                        version INTEGER NOT NULL, body TEXT, at_ms INTEGER NOT NULL);
                    CREATE TABLE _reshard_fences(
                        range_start INTEGER NOT NULL, range_last INTEGER NOT NULL,
                        generation INTEGER NOT NULL, PRIMARY KEY(range_start, range_last));
                    """
            )
        }
        migrator.registerMigration("v2-streams") { db in
            try db.execute(sql: "CREATE TABLE _reshard_streams(name TEXT PRIMARY KEY NOT NULL)")
        }
        migrator.registerMigration("v3-uncaptured-apply") { db in
            // A row here, present only inside an `apply` transaction, keeps the migrator's
            // writes out of the changelog; the triggers of existing tables learn to look for it.
            try db.execute(sql: "CREATE TABLE _reshard_uncaptured(flag INTEGER NOT NULL)")
            for table in try String.fetchAll(db, sql: "SELECT name FROM _reshard_tables").compactMap(TableName.init) {
                for event in ["insert", "update"] { try db.execute(sql: "DROP TRIGGER IF EXISTS \"r_\(table.rawValue)_cdc_\(event)\"") }
                try db.execute(sql: triggers(table))
            }
        }
        return migrator
    }

    /// The triggers that copy a client write's row image into the changelog. Writes made while
    /// `_reshard_uncaptured` has a row (the migrator's `apply`, which adds and removes it inside
    /// its own transaction, so no other transaction ever sees it) are not client changes: the
    /// changelog would only double a copy's writes, and no stream needs them (see `apply`).
    private static func triggers(_ table: TableName) -> String {
        let literal = "'\(table.rawValue)'"
        let image = "NEW.pk, NEW.skey, NEW.version, NEW.body, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
        return ["insert", "update"].map { event in
            """
            CREATE TRIGGER IF NOT EXISTS "r_\(table.rawValue)_cdc_\(event)" AFTER \(event.uppercased()) ON \(quoted(table))
            WHEN NOT EXISTS (SELECT 1 FROM _reshard_uncaptured) BEGIN
                INSERT INTO _reshard_changelog(tbl, pk, skey, version, body, at_ms) VALUES(\(literal), \(image));
            END;
            """
        }.joined(separator: "\n")
    }

    public func ensureTable(_ table: TableName) async throws {
        let name = Self.quoted(table)
        try await pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS \(name)(
                        pk TEXT PRIMARY KEY NOT NULL, skey TEXT NOT NULL, h INTEGER NOT NULL,
                        version INTEGER NOT NULL, body TEXT, digest INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS "r_\(table.rawValue)_h" ON \(name)(h, pk);
                    CREATE INDEX IF NOT EXISTS "r_\(table.rawValue)_tombstones" ON \(name)(version) WHERE body IS NULL;
                    \(Self.triggers(table))
                    """
            )
            try db.execute(sql: "INSERT OR IGNORE INTO _reshard_tables(name) VALUES(?)", arguments: [table.rawValue])
        }
    }

    public func tables() async throws -> [TableName] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM _reshard_tables ORDER BY name").compactMap(TableName.init)
        }
    }

    public func write(_ write: ClientWrite) async throws -> WriteOutcome {
        try StoreError.check(write)
        let name = Self.quoted(write.table)
        let hash = KeyHash.of(write.shardKey)
        return try await guarded(write.table) { db in
            // Cached statements: the hot path must not re-parse SQL on every request.
            if let fence = try Self.fence(db, over: hash), fence > write.generation { throw StoreError.fenced(at: fence) }
            let select = try db.cachedStatement(sql: "SELECT version, body IS NULL AS deleted FROM \(name) WHERE pk = ?")
            let current = try Row.fetchOne(select, arguments: [write.pk])
            let currentVersion = current.map { UInt64(bitPattern: $0["version"] as Int64) }
            let isLive = current.map { !($0["deleted"] as Bool) } ?? false
            if write.body == nil && !isLive { return .notFound }
            let version = VersionRule.next(current: currentVersion, proposed: write.proposedVersion)
            let row = StoredRow(table: write.table, pk: write.pk, shardKey: write.shardKey, version: version, body: write.body)
            let upsert = try db.cachedStatement(sql: Self.upsert(write.table, onlyNewer: false))
            try upsert.execute(arguments: Self.arguments(row))
            return .written(version: version)
        }
    }

    public func get(table: TableName, pk: String) async throws -> StoredRow? {
        try StoreError.check(pk, "primary key")
        return try await guardedRead(table) { db in
            let select = try db.cachedStatement(sql: "SELECT pk, skey, version, body FROM \(Self.quoted(table)) WHERE pk = ?")
            return try Row.fetchOne(select, arguments: [pk]).map { Self.storedRow($0, table: table) }
        }
    }

    public func read(table: TableName, pk: String, shardKey: String) async throws -> FencedRead<StoredRow?> {
        try StoreError.check(pk, "primary key")
        try StoreError.check(shardKey, "shard key")
        return try await guardedRead(table) { db in
            let select = try db.cachedStatement(sql: "SELECT pk, skey, version, body FROM \(Self.quoted(table)) WHERE pk = ?")
            let row = try Row.fetchOne(select, arguments: [pk]).map { Self.storedRow($0, table: table) }
            return FencedRead(value: row, fence: try Self.fence(db, over: KeyHash.of(shardKey)))
        }
    }

    public func rows(table: TableName, shardKey: String, limit: Int) async throws -> FencedRead<[StoredRow]> {
        try StoreError.check(shardKey, "shard key")
        return try await guardedRead(table) { db in
            let hash = KeyHash.of(shardKey)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT pk, skey, version, body FROM \(Self.quoted(table))
                    WHERE h = ? AND skey = ? AND body IS NOT NULL ORDER BY pk LIMIT ?
                    """,
                arguments: [KeyHash.ordered(hash), shardKey, limit]
            ).map { Self.storedRow($0, table: table) }
            return FencedRead(value: rows, fence: try Self.fence(db, over: hash))
        }
    }

    public func deleteRange(_ range: HashRange, limit: Int) async throws -> Int {
        try await physicallyDelete(
            where: "h >= ? AND h <= ?", [KeyHash.ordered(range.start), KeyHash.ordered(range.last)], limit: limit)
    }

    public func purgeTombstones(before version: UInt64, limit: Int) async throws -> Int {
        // The partial index on tombstones keeps this from scanning live rows.
        try await physicallyDelete(where: "body IS NULL AND version < ?", [Int64(bitPattern: version)], limit: limit)
    }

    /// Deletes up to `limit` rows matching `condition` over every table, in one transaction.
    /// DELETE has no trigger: cleanup and garbage collection must not look like client changes.
    private func physicallyDelete(where condition: String, _ arguments: StatementArguments, limit: Int) async throws -> Int {
        let tables = try await tables()
        return try await pool.write { db in
            var deleted = 0
            for table in tables where deleted < limit {
                try db.execute(
                    sql: """
                        DELETE FROM \(Self.quoted(table)) WHERE rowid IN (
                            SELECT rowid FROM \(Self.quoted(table)) WHERE \(condition) LIMIT ?)
                        """,
                    arguments: arguments + [limit - deleted])
                deleted += db.changesCount
            }
            return deleted
        }
    }

    public func summarize(_ request: SummaryRequest) async throws -> SnapshotSummary {
        // One read transaction is one WAL snapshot: the position and every sum agree.
        try await pool.read { db in
            let position = try Self.changePosition(db)
            var summaries: [TableName: [[RangeSummary]]] = [:]
            for table in request.tables {
                summaries[table] = try request.ranges.map { try Self.subrangeSummaries(db, table: table, range: $0, parts: request.parts) }
            }
            var aggregates: [AggregateCheck: [AggregateSummary]] = [:]
            for check in request.checks {
                aggregates[check] = try request.ranges.map { try Self.aggregate(db, check: check, range: $0) }
            }
            return SnapshotSummary(position: position, summaries: summaries, aggregates: aggregates)
        }
    }

    public func snapshotScan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> RowsAtPosition {
        try await guardedRead(table) { db in
            RowsAtPosition(
                position: try Self.changePosition(db), rows: try Self.scan(db, table: table, range: range, after: cursor, limit: limit))
        }
    }

    public func repair(table: TableName, overwrite rows: [StoredRow], remove pks: [String]) async throws -> Int {
        guard !rows.isEmpty || !pks.isEmpty else { return 0 }
        let name = Self.quoted(table)
        return try await guarded(table) { db in
            var changed = 0
            // Whatever the version: this is the repair the version rule cannot make.
            let upsert = try db.cachedStatement(sql: Self.upsert(table, onlyNewer: false))
            for row in rows {
                guard row.table == table else { throw StoreError.backend("repair of \(table) was given a row of \(row.table)") }
                try upsert.execute(arguments: Self.arguments(row))
                changed += db.changesCount
            }
            // DELETE has no trigger: the old owner never had these rows, so nothing replicates.
            let delete = try db.cachedStatement(sql: "DELETE FROM \(name) WHERE pk = ?")
            for pk in pks {
                try delete.execute(arguments: [pk])
                changed += db.changesCount
            }
            return changed
        }
    }

    public func apply(_ rows: [StoredRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        return try await withCheckedThrowingContinuation { continuation in
            if applies.enqueue(rows, continuation) {
                Task { await self.flushApplies() }
            }
        }
    }

    /// Writes the queued applies until none is left, several per transaction (group commit).
    /// A copy runs its slices side by side and SQLite has one writer, so their applies queue up
    /// anyway; one transaction for what queued writes each B-tree page and the WAL frame once
    /// instead of once per chunk (a copied range's primary keys land in random order, so a
    /// 1,000-row chunk dirties about as many pages as it has rows).
    private func flushApplies() async {
        while let batch = applies.next() {
            let rows = batch.map(\.rows)
            do {
                let counts = try await pool.writeWithoutTransaction { db in try Self.apply(db, rows) }
                for (request, changed) in zip(batch, counts) { request.continuation.resume(returning: changed) }
            } catch {
                // One request's failure (a table without storage) must not fail the others: each
                // is tried again alone and gets its own answer.
                for request in batch {
                    let rows = request.rows
                    do {
                        let counts = try await pool.writeWithoutTransaction { db in try Self.apply(db, [rows]) }
                        request.continuation.resume(returning: counts.reduce(0, +))
                    } catch {
                        request.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    /// Applies each batch of rows in one immediate transaction; returns the rows changed per batch.
    private static func apply(_ db: Database, _ batches: [[StoredRow]]) throws -> [Int] {
        var counts: [Int] = []
        try db.inTransaction(.immediate) {
            try db.execute(sql: "INSERT INTO _reshard_uncaptured(flag) VALUES(1)")
            // One compiled statement per table for the whole transaction: compiling per row (and
            // GRDB's authorizer pass over each compile) cost more than the inserts.
            var statements: [TableName: Statement] = [:]
            for rows in batches {
                var changed = 0
                for row in rows {
                    do {
                        let statement = try statements[row.table] ?? db.cachedStatement(sql: Self.upsert(row.table, onlyNewer: true))
                        statements[row.table] = statement
                        try statement.execute(arguments: Self.arguments(row))
                    } catch let error as DatabaseError where Self.isNoSuchTable(error) {
                        throw StoreError.unknownTable(row.table)
                    }
                    changed += db.changesCount
                }
                counts.append(changed)
            }
            try db.execute(sql: "DELETE FROM _reshard_uncaptured")
            return .commit
        }
        return counts
    }

    public func scan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> [StoredRow] {
        try await guardedRead(table) { db in try Self.scan(db, table: table, range: range, after: cursor, limit: limit) }
    }

    public func summary(table: TableName, range: HashRange) async throws -> RangeSummary {
        try await guardedRead(table) { db in try Self.summary(db, table: table, range: range) }
    }

    public func changeCapture() async throws -> String { "triggers" }

    /// GRDB closes the file when the store goes away.
    public func close() async {}

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
                guard let table = TableName(row["tbl"]) else { return nil }
                return Change(
                    position: UInt64(bitPattern: row["position"] as Int64),
                    row: Self.storedRow(row, table: table),
                    atMillis: UInt64(max(0, row["at_ms"] as Int64))
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

    @discardableResult
    public func fence(_ ranges: [HashRange], generation: UInt64) async throws -> UInt64 {
        try await pool.write { db in
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO _reshard_fences(range_start, range_last, generation) VALUES(?, ?, ?)
                    ON CONFLICT(range_start, range_last) DO UPDATE SET generation = max(generation, excluded.generation)
                    """)
            for range in ranges {
                try upsert.execute(arguments: [KeyHash.ordered(range.start), KeyHash.ordered(range.last), Int64(bitPattern: generation)])
            }
            return try Self.changePosition(db)
        }
    }

    public func removeFences(_ ranges: [HashRange]) async throws {
        guard !ranges.isEmpty else { return }
        try await pool.write { db in
            let delete = try db.cachedStatement(sql: "DELETE FROM _reshard_fences WHERE range_start = ? AND range_last = ?")
            for range in ranges { try delete.execute(arguments: [KeyHash.ordered(range.start), KeyHash.ordered(range.last)]) }
        }
    }

    public func fences() async throws -> [Fence] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT range_start, range_last, generation FROM _reshard_fences ORDER BY range_start").map {
                Fence(
                    range: HashRange(start: KeyHash.unordered($0["range_start"]), last: KeyHash.unordered($0["range_last"])),
                    generation: UInt64(bitPattern: $0["generation"] as Int64)
                )
            }
        }
    }
}

extension SQLiteShardStore {
    static func scan(_ db: Database, table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) throws -> [StoredRow] {
        // SQLite seeks the index only on `h >= ?`, not on the row value, so the cursor's hash is
        // the lower bound too: otherwise every chunk re-reads the range from its start, and a
        // copy slows down as it goes (quadratic in the rows of the range).
        let from = max(range.start, cursor?.hash ?? range.start)
        var sql = "SELECT pk, skey, version, body FROM \(quoted(table)) WHERE h >= ? AND h <= ?"
        var arguments: StatementArguments = [KeyHash.ordered(from), KeyHash.ordered(range.last)]
        if let cursor {
            sql += " AND (h, pk) > (?, ?)"
            arguments += [KeyHash.ordered(cursor.hash), cursor.pk]
        }
        sql += " ORDER BY h, pk LIMIT ?"
        arguments += [limit]
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { storedRow($0, table: table) }
    }

    /// The summaries of `range.split(into: parts)`, in one pass over the range.
    static func subrangeSummaries(_ db: Database, table: TableName, range: HashRange, parts: Int) throws -> [RangeSummary] {
        let pieces = range.split(into: parts)
        guard pieces.count > 1 else { return [try summary(db, table: table, range: range)] }
        var result = Array(repeating: RangeSummary.empty, count: pieces.count)
        let width = Int64(bitPattern: range.subrangeWidth(parts: parts))
        let start = KeyHash.ordered(range.start)
        let bounds: StatementArguments = [start, KeyHash.ordered(range.last)]
        if range.last - range.start < 1 << 63 {
            // `h - start` is the hash's offset in the range and stays below 2^63, so SQLite's signed
            // arithmetic buckets exactly as `subrangeIndex` does.
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT (h - ?) / ? AS part, count(*) AS n, count(body) AS live,
                        sum((digest >> 32) & 4294967295) AS high, sum(digest & 4294967295) AS low,
                        sum(length(CAST(pk AS BLOB)) + coalesce(length(CAST(body AS BLOB)), 0)) AS bytes
                    FROM \(quoted(table)) WHERE h >= ? AND h <= ? GROUP BY part
                    """,
                arguments: [start, width] + bounds)
            for row in rows {
                let part: Int = row["part"]
                guard result.indices.contains(part) else { throw StoreError.backend("sub-range \(part) out of \(pieces.count)") }
                result[part] = RangeSummary(
                    rows: row["n"], liveRows: row["live"],
                    checksum: RangeSummary.checksum(
                        highSum: UInt64(bitPattern: row["high"] as Int64), lowSum: UInt64(bitPattern: row["low"] as Int64)),
                    bytes: row["bytes"])
            }
            return result
        }
        // Over half the hash space the offset does not fit a signed integer: bucket here instead.
        let cursor = try Row.fetchCursor(
            db,
            sql: """
                SELECT h, digest, body IS NULL AS deleted,
                    length(CAST(pk AS BLOB)) + coalesce(length(CAST(body AS BLOB)), 0) AS bytes
                FROM \(quoted(table)) WHERE h >= ? AND h <= ?
                """,
            arguments: bounds)
        while let row = try cursor.next() {
            let part = range.subrangeIndex(of: KeyHash.unordered(row["h"]), parts: parts)
            result[part].rows += 1
            result[part].liveRows += (row["deleted"] as Bool) ? 0 : 1
            result[part].checksum = result[part].checksum &+ UInt64(bitPattern: row["digest"] as Int64)
            result[part].bytes += row["bytes"] as Int
        }
        return result
    }

    /// Live rows and the exact sum of the check's field over `range`. The numbers are read as the
    /// JSON text they were written as and summed in decimal, so both sides agree to the last digit
    /// whatever order the rows come in.
    static func aggregate(_ db: Database, check: AggregateCheck, range: HashRange) throws -> AggregateSummary {
        let path = "$.\(check.field)"
        let cursor = try Row.fetchCursor(
            db,
            sql: """
                SELECT json_type(body, ?) AS kind, body -> ? AS value FROM \(quoted(check.table))
                WHERE h >= ? AND h <= ? AND body IS NOT NULL
                """,
            arguments: [path, path, KeyHash.ordered(range.start), KeyHash.ordered(range.last)])
        var summary = AggregateSummary(rows: 0, numeric: 0, sum: "0")
        var sum = Decimal(0)
        while let row = try cursor.next() {
            summary.rows += 1
            let kind: String? = row["kind"]
            guard kind == "integer" || kind == "real", let text: String = row["value"], let value = Decimal(string: text) else { continue }
            summary.numeric += 1
            sum += value
        }
        summary.sum = "\(sum)"
        return summary
    }

    static func summary(_ db: Database, table: TableName, range: HashRange) throws -> RangeSummary {
        // Two 32-bit partial sums: SQLite's sum() raises on signed 64-bit overflow.
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT count(*) AS n, count(body) AS live,
                    coalesce(sum((digest >> 32) & 4294967295), 0) AS high,
                    coalesce(sum(digest & 4294967295), 0) AS low,
                    coalesce(sum(length(CAST(pk AS BLOB)) + coalesce(length(CAST(body AS BLOB)), 0)), 0) AS bytes
                FROM \(quoted(table)) WHERE h >= ? AND h <= ?
                """,
            arguments: [KeyHash.ordered(range.start), KeyHash.ordered(range.last)]
        )
        guard let row else { return .empty }
        return RangeSummary(
            rows: row["n"],
            liveRows: row["live"],
            checksum: RangeSummary.checksum(
                highSum: UInt64(bitPattern: row["high"] as Int64),
                lowSum: UInt64(bitPattern: row["low"] as Int64)
            ),
            bytes: row["bytes"]
        )
    }

    static func changePosition(_ db: Database) throws -> UInt64 {
        // sqlite_sequence keeps the high-water mark even after the changelog is purged.
        let position = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = '_reshard_changelog'")
        return UInt64(max(0, position ?? 0))
    }

    static func fence(_ db: Database, over hash: UInt64) throws -> UInt64? {
        let statement = try db.cachedStatement(
            sql: "SELECT max(generation) FROM _reshard_fences WHERE range_start <= ? AND range_last >= ?")
        return try Int64.fetchOne(statement, arguments: [KeyHash.ordered(hash), KeyHash.ordered(hash)]).map { UInt64(bitPattern: $0) }
    }

    /// The data table's quoted name; `TableName` admits only `[a-z0-9_]`, so no quoting escapes.
    static func quoted(_ table: TableName) -> String { "\"r_\(table.rawValue)\"" }

    /// Inserts or replaces a row (the arguments of `arguments(_:)`); with `onlyNewer` an existing
    /// row is replaced only by a strictly newer version (invariant 3).
    static func upsert(_ table: TableName, onlyNewer: Bool) -> String {
        """
        INSERT INTO \(quoted(table))(pk, skey, h, version, body, digest) VALUES(?, ?, ?, ?, ?, ?)
        ON CONFLICT(pk) DO UPDATE SET skey = excluded.skey, h = excluded.h, version = excluded.version,
            body = excluded.body, digest = excluded.digest
        """ + (onlyNewer ? " WHERE excluded.version > version" : "")
    }

    static func arguments(_ row: StoredRow) -> StatementArguments {
        [
            row.pk, row.shardKey, KeyHash.ordered(row.hash), Int64(bitPattern: row.version), row.body,
            Int64(bitPattern: row.digest),
        ]
    }

    static func storedRow(_ row: Row, table: TableName) -> StoredRow {
        StoredRow(
            table: table,
            pk: row["pk"],
            shardKey: row["skey"],
            version: UInt64(bitPattern: row["version"] as Int64),
            body: row["body"]
        )
    }

    static func isNoSuchTable(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_ERROR && (error.message ?? "").hasPrefix("no such table")
    }

    /// A write transaction (BEGIN IMMEDIATE, so the fence read and the write are one step) that
    /// turns a missing table into a typed error.
    private func guarded<T: Sendable>(_ table: TableName, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else { throw StoreError.backend("transaction produced no result") }
                return result
            }
        } catch let error as DatabaseError where Self.isNoSuchTable(error) {
            throw StoreError.unknownTable(table)
        }
    }

    /// A read that turns a missing table into a typed error. Reads always go through GRDB's
    /// async API: a synchronous read on a cooperative thread can wait for a reader connection
    /// that only another suspended task can free, and with two cores that deadlocked the
    /// process under a migration's scans (seen in LiveMigrationTests).
    private func guardedRead<T: Sendable>(_ table: TableName, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError where Self.isNoSuchTable(error) {
            throw StoreError.unknownTable(table)
        }
    }
}

/// The applies waiting for the writer, and whether a flush is running.
private final class ApplyQueue: Sendable {
    struct Request {
        let rows: [StoredRow]
        let continuation: CheckedContinuation<Int, any Error>
    }

    /// Rows above which a queued request waits for the next transaction: the writer is held
    /// for the whole transaction, and client writes wait behind it.
    static let maxRows = 10_000

    private let state = Mutex<(pending: [Request], flushing: Bool)>(([], false))

    /// Queues a request; true when the caller must start the flush (none is running).
    func enqueue(_ rows: [StoredRow], _ continuation: CheckedContinuation<Int, any Error>) -> Bool {
        state.withLock { state in
            state.pending.append(Request(rows: rows, continuation: continuation))
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
    }

    /// The next transaction's requests (at least one, up to `maxRows` rows), or nil when none is
    /// waiting, which also ends the flush.
    func next() -> [Request]? {
        state.withLock { state in
            guard !state.pending.isEmpty else {
                state.flushing = false
                return nil
            }
            var rows = 0
            var count = 0
            for request in state.pending {
                if count > 0 && rows + request.rows.count > Self.maxRows { break }
                rows += request.rows.count
                count += 1
            }
            let taken = Array(state.pending.prefix(count))
            state.pending.removeFirst(count)
            return taken
        }
    }
}
