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
    let pool: DatabasePool
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
        migrator.registerMigration("v4-retired") { db in
            // Tables a shard-key change replaced: client writes to them are refused.
            try db.execute(sql: "CREATE TABLE _reshard_retired(tbl TEXT PRIMARY KEY NOT NULL, layout INTEGER NOT NULL)")
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
            try Self.refuseRetired(db, write.table)
            let select = try db.cachedStatement(sql: "SELECT version, body IS NULL AS deleted FROM \(name) WHERE pk = ?")
            let current = try Row.fetchOne(select, arguments: [write.pk])
            let currentVersion = try current.map { UInt64(bitPattern: try $0.decode(Int64.self, atIndex: 0)) }
            let isLive = try current.map { !(try $0.decode(Bool.self, atIndex: 1)) } ?? false
            return try WriteOutcome.decide(condition: write.condition, live: isLive ? currentVersion : nil, isDelete: write.body == nil) {
                let version = VersionRule.next(current: currentVersion, proposed: write.proposedVersion)
                let row = StoredRow(table: write.table, pk: write.pk, shardKey: write.shardKey, version: version, body: write.body)
                let upsert = try db.cachedStatement(sql: Self.upsert(write.table, onlyNewer: false))
                try upsert.execute(arguments: Self.arguments(row))
                return version
            }
        }
    }

    public func writeSecond(_ row: StoredRow, routedBy generation: UInt64) async throws -> Bool {
        try StoreError.check(row.pk, "primary key")
        return try await guarded(row.table) { db in
            if let fence = try Self.fence(db, over: row.hash), fence > generation { throw StoreError.fenced(at: fence) }
            try Self.refuseRetired(db, row.table)
            // Like a copy, kept out of this shard's changelog (see `apply`).
            try db.execute(sql: "INSERT INTO _reshard_uncaptured(flag) VALUES(1)")
            try db.cachedStatement(sql: Self.upsert(row.table, onlyNewer: true)).execute(arguments: Self.arguments(row))
            let changed = db.changesCount > 0
            try db.execute(sql: "DELETE FROM _reshard_uncaptured")
            return changed
        }
    }

    public func place(_ placement: Placement) async throws -> PlacementOutcome {
        let row = placement.row
        try StoreError.check(row.pk, "primary key")
        try StoreError.check(row.shardKey, "shard key")
        if let body = row.body, body.utf8.contains(0) { throw StoreError.invalidBody("holds a NUL byte") }
        return try await guarded(row.table) { db in
            if let generation = placement.generation {
                if let fence = try Self.fence(db, over: row.hash), fence > generation { throw StoreError.fenced(at: fence) }
                try Self.refuseRetired(db, row.table)
            }
            let select = try db.cachedStatement(sql: "SELECT version FROM \(Self.quoted(row.table)) WHERE pk = ?")
            let stored = try Int64.fetchOne(select, arguments: [row.pk]).map { UInt64(bitPattern: $0) }
            let (outcome, version) = placement.decide(stored: stored)
            guard let version else { return outcome }
            var written = row
            written.version = version
            // A router's placement is a client change; the migrator's is not (see `apply`).
            if placement.generation == nil { try db.execute(sql: "INSERT INTO _reshard_uncaptured(flag) VALUES(1)") }
            try db.cachedStatement(sql: Self.upsert(row.table, onlyNewer: false)).execute(arguments: Self.arguments(written))
            if placement.generation == nil { try db.execute(sql: "DELETE FROM _reshard_uncaptured") }
            return outcome
        }
    }

    public func get(table: TableName, pk: String) async throws -> StoredRow? {
        try StoreError.check(pk, "primary key")
        return try await guardedRead(table) { db in
            let select = try db.cachedStatement(sql: "SELECT pk, skey, version, body FROM \(Self.quoted(table)) WHERE pk = ?")
            return try Row.fetchOne(select, arguments: [pk]).map { try Self.storedRow($0, table: table) }
        }
    }

    public func read(table: TableName, pk: String, shardKey: String) async throws -> FencedRead<StoredRow?> {
        try StoreError.check(pk, "primary key")
        try StoreError.check(shardKey, "shard key")
        return try await guardedRead(table) { db in
            let select = try db.cachedStatement(sql: "SELECT pk, skey, version, body FROM \(Self.quoted(table)) WHERE pk = ?")
            let row = try Row.fetchOne(select, arguments: [pk]).map { try Self.storedRow($0, table: table) }
            return FencedRead(value: row, fence: try Self.fence(db, over: KeyHash.of(shardKey)), retired: try Self.retired(db, table))
        }
    }

    public func rows(table: TableName, shardKey: String, after: String?, limit: Int) async throws -> FencedRead<[StoredRow]> {
        try StoreError.check(shardKey, "shard key")
        if let after { try StoreError.check(after, "primary key") }
        return try await guardedRead(table) { db in
            let hash = KeyHash.of(shardKey)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT pk, skey, version, body FROM \(Self.quoted(table))
                    WHERE h = ? AND skey = ? AND body IS NOT NULL AND pk > ? ORDER BY pk LIMIT ?
                    """,
                arguments: [KeyHash.ordered(hash), shardKey, after ?? "", limit]
            ).map { try Self.storedRow($0, table: table) }
            return FencedRead(value: rows, fence: try Self.fence(db, over: hash), retired: try Self.retired(db, table))
        }
    }

    public func apply(_ rows: [StoredRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        // Everything per row that needs no database is done here, by the caller, and not by
        // the one writer every apply and client write queues for: the digest (an MD5) and the
        // primary-key order the writer inserts in (see `apply(_:_:)`).
        let prepared = PreparedRows(rows)
        return try await withCheckedThrowingContinuation { continuation in
            if applies.enqueue(prepared, continuation) {
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
    ///
    /// The rows go in primary-key order, whichever batch they came from: a copy reads in hash
    /// order, which is random primary-key order, and inserting it as it comes walks the whole
    /// primary-key index for every row; sorted, consecutive inserts land on the same or the next
    /// leaf page, as a bulk load's do. Each batch comes sorted; they are merged here. Rows of
    /// one key keep their order (the version rule makes the outcome the same in any order;
    /// keeping it also keeps the first of equal versions).
    private static func apply(_ db: Database, _ batches: [PreparedRows]) throws -> [Int] {
        var counts = Array(repeating: 0, count: batches.count)
        try db.inTransaction(.immediate) {
            try db.execute(sql: "INSERT INTO _reshard_uncaptured(flag) VALUES(1)")
            // One compiled statement per table for the whole transaction: compiling per row (and
            // GRDB's authorizer pass over each compile) cost more than the inserts.
            var statements: [TableName: Statement] = [:]
            try PreparedRows.merge(batches) { batch, row in
                do {
                    let statement = try statements[row.row.table] ?? db.cachedStatement(sql: Self.upsert(row.row.table, onlyNewer: true))
                    statements[row.row.table] = statement
                    try statement.execute(arguments: Self.arguments(row.row, digest: row.digest))
                } catch let error as DatabaseError where Self.isNoSuchTable(error) {
                    throw StoreError.unknownTable(row.row.table)
                }
                counts[batch] += db.changesCount
            }
            try db.execute(sql: "DELETE FROM _reshard_uncaptured")
            return .commit
        }
        return counts
    }

    /// GRDB closes the file when the store goes away.
    public func close() async {}
}

extension SQLiteShardStore {
    /// The data table's quoted name; `TableName` admits only `[a-z0-9_]`, so no quoting escapes.
    static func quoted(_ table: TableName) -> String { "\"r_\(table.rawValue)\"" }

    /// Inserts or replaces a row (the arguments of `arguments(_:)`); with `onlyNewer` an existing
    /// row is replaced only by a strictly newer version (invariant 3).
    static func upsert(_ table: TableName, onlyNewer: Bool) -> String {
        """
        INSERT INTO \(quoted(table))(pk, skey, h, version, body, digest) VALUES(?, ?, ?, ?, ?, ?)
        ON CONFLICT(pk) DO UPDATE SET skey = excluded.skey, h = excluded.h, version = excluded.version,
            body = excluded.body, digest = excluded.digest
        """ + (onlyNewer ? " WHERE " + VersionSQL.newer("excluded.version", than: "version") : "")
    }

    static func arguments(_ row: StoredRow) -> StatementArguments {
        arguments(row, digest: row.digest)
    }

    static func arguments(_ row: StoredRow, digest: UInt64) -> StatementArguments {
        [row.pk, row.shardKey, KeyHash.ordered(row.hash), Int64(bitPattern: row.version), row.body, Int64(bitPattern: digest)]
    }

    static func storedRow(_ row: Row, table: TableName) throws -> StoredRow {
        StoredRow(
            table: table,
            pk: try row.decode(forColumn: "pk"),
            shardKey: try row.decode(forColumn: "skey"),
            version: UInt64(bitPattern: try row.decode(Int64.self, forColumn: "version")),
            body: try row.decode(forColumn: "body")
        )
    }

    static func isNoSuchTable(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_ERROR && (error.message ?? "").hasPrefix("no such table")
    }

    /// A write transaction (BEGIN IMMEDIATE, so the fence read and the write are one step) that
    /// turns a missing table into a typed error.
    func guarded<T: Sendable>(_ table: TableName, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
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
    func guardedRead<T: Sendable>(_ table: TableName, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
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
        let rows: PreparedRows
        let continuation: CheckedContinuation<Int, any Error>
    }

    /// Rows above which a queued request waits for the next transaction: the writer is held
    /// for the whole transaction, and client writes wait behind it.
    static let maxRows = 10_000

    private let state = Mutex<(pending: [Request], flushing: Bool)>(([], false))

    /// Queues a request; true when the caller must start the flush (none is running).
    func enqueue(_ rows: PreparedRows, _ continuation: CheckedContinuation<Int, any Error>) -> Bool {
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

/// An apply's rows in (table, primary key) order, each with its digest, made ready by the
/// caller so that the writer only binds and steps.
struct PreparedRows: Sendable {
    struct Row: Sendable {
        let row: StoredRow
        let digest: UInt64
    }

    let rows: [Row]
    var count: Int { rows.count }

    init(_ rows: [StoredRow]) {
        // Stable: rows of one key keep the order they came in.
        self.rows = rows.enumerated().sorted { lhs, rhs in
            if Self.precedes(lhs.element, rhs.element) { return true }
            if Self.precedes(rhs.element, lhs.element) { return false }
            return lhs.offset < rhs.offset
        }.map { Row(row: $0.element, digest: $0.element.digest) }
    }

    /// (table, primary key) order; keys compare as UTF-8 bytes, SQLite's BINARY collation.
    static func precedes(_ lhs: StoredRow, _ rhs: StoredRow) -> Bool {
        if lhs.table != rhs.table { return lhs.table < rhs.table }
        return lhs.pk.utf8.lexicographicallyPrecedes(rhs.pk.utf8)
    }

    /// Visits the rows of every batch in one (table, primary key) order, with the index of the
    /// batch each came from; of equal keys, the earlier batch's first.
    static func merge(_ batches: [PreparedRows], _ visit: (Int, Row) throws -> Void) throws {
        var next = Array(repeating: 0, count: batches.count)
        while true {
            var chosen: Int?
            for (batch, rows) in batches.enumerated() where next[batch] < rows.count {
                guard let best = chosen else {
                    chosen = batch
                    continue
                }
                if precedes(rows.rows[next[batch]].row, batches[best].rows[next[best]].row) { chosen = batch }
            }
            guard let batch = chosen else { return }
            try visit(batch, batches[batch].rows[next[batch]])
            next[batch] += 1
        }
    }
}
