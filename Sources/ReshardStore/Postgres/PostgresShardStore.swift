import Foundation
import Logging
import PostgresNIO
import ReshardCore
import Synchronization

/// A shard in one PostgreSQL database, through PostgresNIO.
///
/// Each table `t` is `r_t(pk, skey, h, version, body, digest)` like on SQLite, with `pk` and
/// `skey` in the "C" collation so rows sort by bytes on every server, and `digest` a generated
/// column (`RowDigest.sqlExpression`), so a client write is one statement.
///
/// Fences and writes: every client write takes a ROW SHARE lock on `_reshard_fences` (through
/// `FOR KEY SHARE` in the statement that reads the fence over its key) and keeps it to commit; a
/// fence takes the table in EXCLUSIVE mode. So a fence waits for every write in flight, no write
/// passes a fence check while a fence is being set, and every write a fence let through is
/// committed, and visible, before the fence's position is read. (A lock on fence rows alone could
/// not do it: the fence a write must wait for may be a row that does not exist yet.)
///
/// Changes are read by logical decoding (`PostgresShardStore+Changes.swift`).
public final class PostgresShardStore: ShardStore {
    /// The shard this database serves.
    public let shardID: ShardID
    /// The connections.
    let pool: PostgresPool
    /// The database this shard lives in (the benchmarks point pgbench at it).
    public var endpoint: PostgresEndpoint { pool.endpoint }
    let logger: Logger
    /// One exported-snapshot read at a time: each holds two connections for a moment.
    let snapshotLock = AsyncSerialLock()
    /// When the WAL decoding restart point was last nudged (see `nudgeRestartPoint`).
    let lastNudge = Mutex<ContinuousClock.Instant?>(nil)
    /// Tables whose last bulk apply met a stored key (see `bulkApply`).
    let bulkConflicts = Mutex<Set<TableName>>([])
    /// Logical decoding, or the trigger-fed changelog where the server cannot decode.
    public let capture: PostgresChangeCapture

    /// Connects to `endpoint`, creating the shard's own tables if needed. Throws a clear error
    /// when the database cannot be reached within the lease timeout.
    public static func open(shardID: ShardID, endpoint: PostgresEndpoint, logger: Logger) async throws -> PostgresShardStore {
        let pool = PostgresPool(endpoint: endpoint, logger: logger)
        let store: PostgresShardStore
        do {
            let capture = try await pool.withConnection { try await Self.detectCapture($0, logger: logger) }
            store = PostgresShardStore(shardID: shardID, pool: pool, logger: logger, capture: capture)
            try await store.prepareSchema()
        } catch {
            await pool.close()
            throw StoreError.backend("shard \(shardID) at \(endpoint) cannot be opened: \(Self.message(error))")
        }
        if case .triggers = store.capture {
            logger.notice(
                "shard \(shardID) captures changes with triggers",
                metadata: ["capture": "\(store.capture)", "hint": "wal_level = logical (and a restart) enables logical decoding"])
        }
        return store
    }

    private init(shardID: ShardID, pool: PostgresPool, logger: Logger, capture: PostgresChangeCapture) {
        self.shardID = shardID
        self.pool = pool
        self.logger = logger
        self.capture = capture
    }

    /// Whether changes are logged by triggers (else decoded from the WAL).
    var usesTriggers: Bool {
        if case .triggers = capture { return true }
        return false
    }

    /// The change position a transaction holding `_reshard_fences` in EXCLUSIVE mode may
    /// promise, as SQL: the WAL insert position, or the changelog's head.
    var positionExpression: String {
        usesTriggers ? Self.changelogHeadExpression : "(pg_current_wal_insert_lsn() - '0/0')::bigint"
    }

    /// Closes every connection.
    public func close() async { await pool.close() }

    private func prepareSchema() async throws {
        try await pool.transaction { connection in
            // Two processes opening one new shard at once must not both create it.
            try await connection.query("SELECT pg_advisory_xact_lock(7405128371)", logger: self.logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS _reshard_tables(name text COLLATE "C" PRIMARY KEY)
                """, logger: self.logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS _reshard_retired(tbl text COLLATE "C" PRIMARY KEY, layout bigint NOT NULL)
                """, logger: self.logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS _reshard_fences(
                    range_start bigint NOT NULL, range_last bigint NOT NULL, generation bigint NOT NULL,
                    PRIMARY KEY(range_start, range_last))
                """, logger: self.logger)
            try await Self.prepareChangelog(connection, capture: self.capture, logger: self.logger)
            // The fence step runs while client writes are held, so it is one statement (one round
            // trip) instead of a transaction of five. Replaced on every open: the position it
            // returns depends on how this server captures changes.
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE OR REPLACE FUNCTION _reshard_fence(starts bigint[], lasts bigint[], g bigint)
                        RETURNS bigint LANGUAGE plpgsql AS $$
                        BEGIN
                            -- Waits for every client write in flight; see PostgresShardStore.
                            LOCK TABLE _reshard_fences IN EXCLUSIVE MODE;
                            -- The commit flushes the WAL through the position, so a drain to it never
                            -- waits on the WAL writer (the server may run with synchronous_commit off).
                            PERFORM set_config('synchronous_commit', 'on', true);
                            INSERT INTO _reshard_fences(range_start, range_last, generation)
                            SELECT s, l, g FROM unnest(starts, lasts) AS r(s, l)
                            ON CONFLICT (range_start, range_last)
                            DO UPDATE SET generation = greatest(_reshard_fences.generation, excluded.generation);
                            RETURN \(self.positionExpression);
                        END $$
                        """), logger: self.logger)
        }
    }

    public func ensureTable(_ table: TableName) async throws {
        let name = Self.quoted(table)
        let raw = table.rawValue
        try await run(table) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7405128371)", logger: self.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TABLE IF NOT EXISTS \(name)(
                            pk text COLLATE "C" PRIMARY KEY, skey text COLLATE "C" NOT NULL, h bigint NOT NULL,
                            version bigint NOT NULL, body text,
                            digest bigint GENERATED ALWAYS AS (\(RowDigest.sqlExpression)) STORED)
                        """), logger: self.logger)
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE INDEX IF NOT EXISTS \"r_\(raw)_h\" ON \(name)(h, pk)"), logger: self.logger)
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE INDEX IF NOT EXISTS \"r_\(raw)_tombstones\" ON \(name)(version) WHERE body IS NULL"),
                logger: self.logger)
            try await connection.query("INSERT INTO _reshard_tables(name) VALUES(\(raw)) ON CONFLICT DO NOTHING", logger: self.logger)
            if self.usesTriggers { try await Self.installTriggers(connection, table: table, logger: self.logger) }
        }
    }

    public func tables() async throws -> [TableName] {
        try await pool.withConnection { connection in
            var names: [TableName] = []
            for try await name in try await connection.query("SELECT name FROM _reshard_tables ORDER BY name", logger: self.logger)
                .decode(String.self)
            {
                if let table = TableName(name) { names.append(table) }
            }
            return names
        }
    }

    // MARK: - Helpers

    /// Runs `body` in a transaction, turning a missing data table into a typed error.
    func run<T: Sendable>(_ table: TableName, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await mappingErrors(table) { try await self.pool.transaction("", body) }
    }

    /// Like `run` for a body of one statement, which is its own transaction: no BEGIN and
    /// COMMIT, so one round trip instead of three.
    func statement<T: Sendable>(_ table: TableName, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await mappingErrors(table) { try await self.pool.withConnection(body) }
    }

    private func mappingErrors<T: Sendable>(_ table: TableName, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch  where Self.isUndefinedTable(error) {
            throw StoreError.unknownTable(table)
        } catch let error as PSQLError {
            throw StoreError.backend(Self.message(error))
        } catch let error as PostgresError {
            throw StoreError.backend(Self.message(error))
        }
    }

    func rows(_ query: PostgresQuery, table: TableName) async throws -> [StoredRow] {
        do {
            return try await pool.withConnection { connection in
                try await Self.decodeRows(connection.query(query, logger: self.logger), table: table)
            }
        } catch  where Self.isUndefinedTable(error) {
            throw StoreError.unknownTable(table)
        }
    }

    static func decodeRows(_ sequence: PostgresRowSequence, table: TableName) async throws -> [StoredRow] {
        var rows: [StoredRow] = []
        for try await (pk, skey, version, body) in sequence.decode((String, String, Int64, String?).self) {
            rows.append(StoredRow(table: table, pk: pk, shardKey: skey, version: UInt64(bitPattern: version), body: body))
        }
        return rows
    }

    static func count(_ sequence: PostgresRowSequence) async throws -> Int {
        var total = 0
        for try await value in sequence.decode(Int64.self) { total += Int(value) }
        return total
    }

    static func binds(_ values: String...) -> PostgresBindings {
        var binds = PostgresBindings()
        for value in values { binds.append(value) }
        return binds
    }

    /// The data table's quoted name; `TableName` admits only `[a-z0-9_]`, so no quoting escapes.
    static func quoted(_ table: TableName) -> String { "\"r_\(table.rawValue)\"" }

    static func isUndefinedTable(_ error: any Error) -> Bool {
        PostgresPreparedStatements.sqlState(error) == "42P01"
    }

    /// The server's message, or the client's error, for logs and errors (PostgresNIO's own
    /// description of a server error leaves the server's words out).
    public static func message(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        // What a prepared statement's failure arrives as (see `PostgresPreparedStatements`).
        if case .server(let server) = error as? PostgresError, let message = server.fields[.message] { return message }
        return "\(error)"
    }
}
