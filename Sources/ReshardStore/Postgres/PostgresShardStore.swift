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
    let logger: Logger
    /// One exported-snapshot read at a time: each holds two connections for a moment.
    let snapshotLock = AsyncSerialLock()
    /// When the WAL decoding restart point was last nudged (see `nudgeRestartPoint`).
    let lastNudge = Mutex<ContinuousClock.Instant?>(nil)
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

    public func write(_ write: ClientWrite) async throws -> WriteOutcome {
        try StoreError.check(write)
        let hash = KeyHash.ordered(KeyHash.of(write.shardKey))
        let proposed = Int64(bitPattern: write.proposedVersion)
        let generation = Int64(bitPattern: write.generation)
        let name = Self.quoted(write.table)
        // One statement, so one round trip and its own transaction: the fence read (under the
        // lock described on the type), the version rule and the write.
        // `hash` is the placeholder of the key's hash in each statement.
        func fence(_ hash: String) -> String {
            """
            WITH fence AS (
                SELECT coalesce(max(generation), 0) AS g FROM (
                    SELECT generation FROM _reshard_fences WHERE range_start <= \(hash) AND range_last >= \(hash) FOR KEY SHARE) f
            ), written AS (
            """
        }
        let statement: String
        var binds = PostgresBindings()
        binds.append(write.pk)
        if let body = write.body {
            statement = """
                \(fence("$3"))
                    INSERT INTO \(name) AS t(pk, skey, h, version, body)
                    SELECT $1, $2, $3, $4, $5 FROM fence WHERE fence.g <= $6
                    ON CONFLICT (pk) DO UPDATE SET skey = excluded.skey, h = excluded.h,
                        version = greatest(t.version + 1, excluded.version), body = excluded.body
                    RETURNING t.version)
                SELECT (SELECT g FROM fence), (SELECT version FROM written)
                """
            binds.append(write.shardKey)
            binds.append(hash)
            binds.append(proposed)
            binds.append(body)
            binds.append(generation)
        } else {
            statement = """
                \(fence("$2"))
                    UPDATE \(name) AS t SET version = greatest(t.version + 1, $3), body = NULL
                    FROM fence WHERE t.pk = $1 AND t.body IS NOT NULL AND fence.g <= $4
                    RETURNING t.version)
                SELECT (SELECT g FROM fence), (SELECT version FROM written)
                """
            binds.append(hash)
            binds.append(proposed)
            binds.append(generation)
        }
        let query = PostgresQuery(unsafeSQL: statement, binds: binds)
        let (fenceGeneration, version) = try await self.statement(write.table) { connection in
            var result: (Int64, Int64?) = (0, nil)
            for try await row in try await connection.query(query, logger: self.logger).decode((Int64, Int64?).self) { result = row }
            return result
        }
        if fenceGeneration > generation { throw StoreError.fenced(at: UInt64(bitPattern: fenceGeneration)) }
        guard let version else {
            if write.body == nil { return .notFound }
            throw StoreError.backend("write of \(write.table)/\(write.pk) returned no version")
        }
        return .written(version: UInt64(bitPattern: version))
    }

    public func get(table: TableName, pk: String) async throws -> StoredRow? {
        try StoreError.check(pk, "primary key")
        let query = PostgresQuery(
            unsafeSQL: "SELECT pk, skey, version, body FROM \(Self.quoted(table)) WHERE pk = $1", binds: Self.binds(pk))
        return try await rows(query, table: table).first
    }

    public func read(table: TableName, pk: String, shardKey: String) async throws -> FencedRead<StoredRow?> {
        try StoreError.check(pk, "primary key")
        try StoreError.check(shardKey, "shard key")
        // One statement is one snapshot: the row and the fence agree.
        var binds = PostgresBindings()
        binds.append(pk)
        binds.append(KeyHash.ordered(KeyHash.of(shardKey)))
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT (SELECT max(generation) FROM _reshard_fences WHERE range_start <= $2 AND range_last >= $2),
                    r.pk, r.skey, r.version, r.body
                FROM (SELECT 1) one LEFT JOIN \(Self.quoted(table)) r ON r.pk = $1
                """, binds: binds)
        let (fence, rows) = try await fencedRows(query, table: table)
        return FencedRead(value: rows.first, fence: fence)
    }

    public func rows(table: TableName, shardKey: String, limit: Int) async throws -> FencedRead<[StoredRow]> {
        try StoreError.check(shardKey, "shard key")
        var binds = PostgresBindings()
        binds.append(KeyHash.ordered(KeyHash.of(shardKey)))
        binds.append(shardKey)
        binds.append(Int64(limit))
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT (SELECT max(generation) FROM _reshard_fences WHERE range_start <= $1 AND range_last >= $1),
                    r.pk, r.skey, r.version, r.body
                FROM (SELECT 1) one LEFT JOIN LATERAL (
                    SELECT pk, skey, version, body FROM \(Self.quoted(table))
                    WHERE h = $1 AND skey = $2 AND body IS NOT NULL ORDER BY pk LIMIT $3) r ON true
                """, binds: binds)
        let (fence, rows) = try await fencedRows(query, table: table)
        return FencedRead(value: rows, fence: fence)
    }

    public func deleteRange(_ range: HashRange, limit: Int) async throws -> Int {
        try await physicallyDelete(where: "h >= $1 AND h <= $2", [KeyHash.ordered(range.start), KeyHash.ordered(range.last)], limit: limit)
    }

    public func purgeTombstones(before version: UInt64, limit: Int) async throws -> Int {
        try await physicallyDelete(where: "body IS NULL AND version < $1", [Int64(bitPattern: version)], limit: limit)
    }

    /// Deletes up to `limit` rows matching `condition` (over `$1`…) over every table, in one
    /// transaction. Logical decoding sees these deletes; the change reader drops them, because
    /// cleanup and garbage collection are not client changes.
    private func physicallyDelete(where condition: String, _ arguments: [Int64], limit: Int) async throws -> Int {
        let tables = try await tables()
        return try await pool.transaction { connection in
            var deleted = 0
            for table in tables where deleted < limit {
                var binds = PostgresBindings()
                for argument in arguments { binds.append(argument) }
                binds.append(Int64(limit - deleted))
                let name = Self.quoted(table)
                let query = PostgresQuery(
                    unsafeSQL: """
                        WITH gone AS (
                            DELETE FROM \(name) WHERE ctid IN (
                                SELECT ctid FROM \(name) WHERE \(condition) LIMIT $\(arguments.count + 1))
                            RETURNING 1)
                        SELECT count(*) FROM gone
                        """, binds: binds)
                deleted += try await Self.count(connection.query(query, logger: self.logger))
            }
            return deleted
        }
    }

    public func repair(table: TableName, overwrite rows: [StoredRow], remove pks: [String]) async throws -> Int {
        guard !rows.isEmpty || !pks.isEmpty else { return 0 }
        if let stray = rows.first(where: { $0.table != table }) {
            throw StoreError.backend("repair of \(table) was given a row of \(stray.table)")
        }
        let name = Self.quoted(table)
        return try await run(table) { connection in
            // Whatever the version: this is the repair the version rule cannot make.
            var changed = try await self.upsert(connection, Self.latest(rows), into: name, onlyNewer: false)
            if !pks.isEmpty {
                var binds = PostgresBindings()
                binds.append(pks)
                let query = PostgresQuery(
                    unsafeSQL: "WITH gone AS (DELETE FROM \(name) WHERE pk = ANY($1) RETURNING 1) SELECT count(*) FROM gone",
                    binds: binds)
                changed += try await Self.count(connection.query(query, logger: self.logger))
            }
            return changed
        }
    }

    public func apply(_ rows: [StoredRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let byTable = Dictionary(grouping: rows, by: \.table)
        let first = rows[0].table
        if byTable.count == 1 {
            // A cutover's drain (writes held) feels every round trip.
            return try await statement(first) { connection in
                try await self.upsert(connection, Self.latest(rows), into: Self.quoted(first), onlyNewer: true)
            }
        }
        return try await run(first) { connection in
            var changed = 0
            for (table, tableRows) in byTable.sorted(by: { $0.key < $1.key }) {
                do {
                    changed += try await self.upsert(connection, Self.latest(tableRows), into: Self.quoted(table), onlyNewer: true)
                } catch  where Self.isUndefinedTable(error) {
                    throw StoreError.unknownTable(table)
                }
            }
            return changed
        }
    }

    /// Writes `rows` (one per pk) in one statement; with `onlyNewer`, an existing row is replaced
    /// only by a strictly newer version (invariant 3). Returns how many rows changed.
    private func upsert(_ connection: PostgresConnection, _ rows: [StoredRow], into name: String, onlyNewer: Bool) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        var binds = PostgresBindings()
        binds.append(rows.map(\.pk))
        binds.append(rows.map(\.shardKey))
        binds.append(rows.map { KeyHash.ordered($0.hash) })
        binds.append(rows.map { Int64(bitPattern: $0.version) })
        binds.append(rows.map { $0.body ?? "" })
        binds.append(rows.map(\.isDeleted))
        let query = PostgresQuery(
            unsafeSQL: """
                WITH written AS (
                    INSERT INTO \(name) AS t(pk, skey, h, version, body)
                    SELECT pk, skey, h, version, CASE WHEN deleted THEN NULL ELSE body END
                    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bool[])
                        AS r(pk, skey, h, version, body, deleted)
                    ON CONFLICT (pk) DO UPDATE SET skey = excluded.skey, h = excluded.h, version = excluded.version,
                        body = excluded.body
                    \(onlyNewer ? "WHERE excluded.version > t.version" : "")
                    RETURNING 1)
                SELECT count(*) FROM written
                """, binds: binds)
        return try await Self.count(connection.query(query, logger: logger))
    }

    /// One row per pk, the newest (the first of equal versions), as applying them one by one
    /// would leave: one INSERT … ON CONFLICT statement may not touch a row twice.
    static func latest(_ rows: [StoredRow]) -> [StoredRow] {
        var chosen: [String: Int] = [:]
        var result: [StoredRow] = []
        for row in rows {
            if let index = chosen[row.pk] {
                if row.version > result[index].version { result[index] = row }
            } else {
                chosen[row.pk] = result.count
                result.append(row)
            }
        }
        return result
    }

    public func scan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> [StoredRow] {
        try await rows(Self.scanQuery(table: table, range: range, after: cursor, limit: limit), table: table)
    }

    static func scanQuery(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(KeyHash.ordered(range.start))
        binds.append(KeyHash.ordered(range.last))
        var sql = "SELECT pk, skey, version, body FROM \(quoted(table)) WHERE h >= $1 AND h <= $2"
        if let cursor {
            binds.append(KeyHash.ordered(cursor.hash))
            binds.append(cursor.pk)
            sql += " AND (h, pk) > ($3, $4)"
        }
        binds.append(Int64(limit))
        sql += " ORDER BY h, pk LIMIT $\(binds.count)"
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    public func summary(table: TableName, range: HashRange) async throws -> RangeSummary {
        try await run(table) { connection in
            try await Self.subrangeSummaries(connection, table: table, range: range, parts: 1, logger: self.logger)[0]
        }
    }

    public func fence(_ ranges: [HashRange], generation: UInt64) async throws -> UInt64 {
        guard !ranges.isEmpty else { return try await changePosition() }
        var binds = PostgresBindings()
        binds.append(ranges.map { KeyHash.ordered($0.start) })
        binds.append(ranges.map { KeyHash.ordered($0.last) })
        binds.append(Int64(bitPattern: generation))
        // One statement outside a transaction block is its own transaction: the lock is held
        // until its commit, as in the type's comment.
        let query = PostgresQuery(unsafeSQL: "SELECT _reshard_fence($1::bigint[], $2::bigint[], $3::bigint)", binds: binds)
        return try await pool.withConnection { connection in try await Self.position(connection.query(query, logger: self.logger)) }
    }

    public func removeFences(_ ranges: [HashRange]) async throws {
        guard !ranges.isEmpty else { return }
        var binds = PostgresBindings()
        binds.append(ranges.map { KeyHash.ordered($0.start) })
        binds.append(ranges.map { KeyHash.ordered($0.last) })
        let query = PostgresQuery(
            unsafeSQL: """
                DELETE FROM _reshard_fences f USING unnest($1::bigint[], $2::bigint[]) AS r(s, l)
                WHERE f.range_start = r.s AND f.range_last = r.l
                """, binds: binds)
        try await pool.withConnection { connection in try await connection.query(query, logger: self.logger) }
    }

    public func fences() async throws -> [Fence] {
        try await pool.withConnection { connection in
            var fences: [Fence] = []
            let rows = try await connection.query(
                "SELECT range_start, range_last, generation FROM _reshard_fences ORDER BY range_start", logger: self.logger)
            for try await (start, last, generation) in rows.decode((Int64, Int64, Int64).self) {
                fences.append(
                    Fence(
                        range: HashRange(start: KeyHash.unordered(start), last: KeyHash.unordered(last)),
                        generation: UInt64(bitPattern: generation)))
            }
            return fences
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

    private func fencedRows(_ query: PostgresQuery, table: TableName) async throws -> (UInt64?, [StoredRow]) {
        do {
            return try await pool.withConnection { connection in
                var fence: Int64?
                var rows: [StoredRow] = []
                let sequence = try await connection.query(query, logger: self.logger)
                for try await (found, pk, skey, version, body) in sequence.decode((Int64?, String?, String?, Int64?, String?).self) {
                    fence = found
                    guard let pk, let skey, let version else { continue }
                    rows.append(StoredRow(table: table, pk: pk, shardKey: skey, version: UInt64(bitPattern: version), body: body))
                }
                return (fence.map { UInt64(bitPattern: $0) }, rows)
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
        (error as? PSQLError)?.serverInfo?[.sqlState] == "42P01"
    }

    /// The server's message, or the client's error, for logs and errors (PostgresNIO's own
    /// description of a server error leaves the server's words out).
    public static func message(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
