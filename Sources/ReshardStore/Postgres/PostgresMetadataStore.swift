import Foundation
import Logging
import PostgresNIO
import ReshardCore
import Synchronization

/// Cluster metadata in a PostgreSQL database, shared by every process of the cluster: tables,
/// shards, shard maps by generation, migration journals, the directive and router reports, in
/// tables named `reshard_meta_…`.
///
/// Unlike SQLite, several processes serve one metadata database, so changes reach every
/// process's watchers through `LISTEN`/`NOTIFY` (`PostgresMetadataListener`), and leadership is
/// a session advisory lock held on a connection of its own (`PostgresLeadership`).
public final class PostgresMetadataStore: MetadataStore {
    /// The metadata database.
    public let endpoint: PostgresEndpoint
    let pool: PostgresPool
    let logger: Logger
    private let watchers: MetadataWatchers
    private let listener: PostgresMetadataListener
    private let leases: PostgresLeaseRegistry

    /// The `NOTIFY` channel; the payload is a `MetadataChange.rawValue`.
    static let channel = "reshard_metadata"

    /// Serialises schema creation across processes. Advisory keys are shared by everything in
    /// the database, so the key is a hash of a name of ours rather than a small constant.
    static let schemaLockKey = Int64(bitPattern: XXHash64.hash("reshard-metadata-schema"))

    /// One statement each: PostgresNIO sends queries through the extended protocol, which takes
    /// a single statement per query. `COLLATE "C"` makes `ORDER BY` compare bytes, as SQLite does.
    private static let schema = [
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_tables(name text COLLATE "C" PRIMARY KEY, definition text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_shards(
            id text COLLATE "C" PRIMARY KEY, backend text NOT NULL, address text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_shard_maps(generation bigint PRIMARY KEY, map text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_migrations(
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, journal text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_active_migration(slot integer PRIMARY KEY CHECK (slot = 1), id text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_directive(id integer PRIMARY KEY CHECK (id = 1), body text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_router_reports(
            router text COLLATE "C" PRIMARY KEY, report text NOT NULL, saved_ms bigint NOT NULL)
        """,
    ]

    /// Connects to `endpoint` and creates the metadata tables if they are missing. Throws
    /// `StoreError.backend` naming the endpoint (without its password) when the database cannot
    /// be reached within the pool's lease timeout.
    public static func open(endpoint: PostgresEndpoint, logger: Logger) async throws -> PostgresMetadataStore {
        let store = PostgresMetadataStore(endpoint: endpoint, logger: logger)
        do {
            try await Self.transaction(store.pool, logger: logger) { connection in
                // Two processes opening a new metadata database at once must not both create it:
                // CREATE TABLE IF NOT EXISTS alone races on the catalog.
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.schemaLockKey))", logger: logger)
                for statement in Self.schema {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
        } catch {
            await store.close()
            throw StoreError.backend("metadata at \(endpoint) cannot be opened: \(PostgresSession.reason(error))")
        }
        return store
    }

    private init(endpoint: PostgresEndpoint, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
        pool = PostgresPool(endpoint: endpoint, logger: logger)
        let watchers = MetadataWatchers()
        self.watchers = watchers
        listener = PostgresMetadataListener(endpoint: endpoint, watchers: watchers, logger: logger)
        leases = PostgresLeaseRegistry()
    }

    // MARK: - Tables and shards

    public func tables() async throws -> [TableDefinition] {
        let texts = try await run { connection in
            var texts: [String] = []
            let rows = try await connection.query("SELECT definition FROM reshard_meta_tables ORDER BY name", logger: self.logger)
            for try await text in rows.decode(String.self) { texts.append(text) }
            return texts
        }
        return try texts.map { try MetadataJSON.decode(TableDefinition.self, $0) }
    }

    public func createTable(_ table: TableDefinition) async throws {
        let name = table.name.rawValue
        let text = try MetadataJSON.encode(table)
        try await write(notifying: .tables) { connection in
            let inserted = try await connection.query(
                """
                INSERT INTO reshard_meta_tables(name, definition) VALUES(\(name), \(text))
                ON CONFLICT (name) DO NOTHING RETURNING 1
                """, logger: self.logger
            ).collect()
            if inserted.isEmpty { throw MetadataError.tableExists(table.name) }
        }
    }

    public func shards() async throws -> [ShardRecord] {
        let rows = try await run { connection in
            var rows: [(String, String, String)] = []
            let sequence = try await connection.query(
                "SELECT id, backend, address FROM reshard_meta_shards ORDER BY id", logger: self.logger)
            for try await row in sequence.decode((String, String, String).self) { rows.append(row) }
            return rows
        }
        return try rows.map { raw, backend, address in
            guard let id = ShardID(raw), let location = ShardLocation(backend: backend, address: address) else {
                throw MetadataError.corrupt("shard \(raw) (\(backend))")
            }
            return ShardRecord(id: id, location: location)
        }
    }

    public func addShard(_ shard: ShardRecord) async throws {
        let (id, backend, address) = (shard.id.rawValue, shard.location.backend, shard.location.address)
        try await write(notifying: .shards) { connection in
            let inserted = try await connection.query(
                """
                INSERT INTO reshard_meta_shards(id, backend, address) VALUES(\(id), \(backend), \(address))
                ON CONFLICT (id) DO NOTHING RETURNING 1
                """, logger: self.logger
            ).collect()
            if inserted.isEmpty { throw MetadataError.shardExists(shard.id) }
        }
    }

    // MARK: - Shard maps

    public func currentShardMap() async throws -> ShardMap? {
        let text = try await run { connection in
            try await Self.first(
                String.self,
                connection.query(
                    "SELECT map FROM reshard_meta_shard_maps ORDER BY generation DESC LIMIT 1", logger: self.logger))
        }
        return try text.map { try MetadataJSON.decode(ShardMap.self, $0) }
    }

    public func shardMap(generation: UInt64) async throws -> ShardMap? {
        let stored = Int64(bitPattern: generation)
        let text = try await run { connection in
            try await Self.first(
                String.self,
                connection.query("SELECT map FROM reshard_meta_shard_maps WHERE generation = \(stored)", logger: self.logger))
        }
        return try text.map { try MetadataJSON.decode(ShardMap.self, $0) }
    }

    public func publish(_ map: ShardMap, replacing expected: UInt64?) async throws {
        let text = try MetadataJSON.encode(map)
        let generation = Int64(bitPattern: map.generation)
        try await write(notifying: .shardMap) { connection in
            // The check and the insert share one transaction, and this lock (which conflicts
            // with itself and with every insert, not with reads) keeps a second publisher from
            // reading the same current generation before the first commits: two publishers
            // cannot both win, even with different new generations.
            try await connection.query("LOCK TABLE reshard_meta_shard_maps IN SHARE ROW EXCLUSIVE MODE", logger: self.logger)
            let current = try await Self.first(
                Int64?.self,
                connection.query("SELECT max(generation) FROM reshard_meta_shard_maps", logger: self.logger)
            )?.map { UInt64(bitPattern: $0) }
            guard current == expected, map.generation > (current ?? 0) else {
                throw MetadataError.generationConflict(expected: expected, found: current)
            }
            try await connection.query(
                "INSERT INTO reshard_meta_shard_maps(generation, map) VALUES(\(generation), \(text))", logger: self.logger)
        }
    }

    // MARK: - Migrations, directive, reports

    public func saveMigration(id: String, journal: String) async throws {
        try await run { connection in
            // Updating in place keeps the migration's first `seq`: the list stays in insertion order.
            _ = try await connection.query(
                """
                INSERT INTO reshard_meta_migrations(id, journal) VALUES(\(id), \(journal))
                ON CONFLICT (id) DO UPDATE SET journal = excluded.journal
                """, logger: self.logger)
        }
    }

    public func admitMigration(id: String, journal: String) async throws -> String? {
        try await run { connection in
            // One statement, so one transaction: the slot is taken (or found held by `id`) and
            // the journal written together. A concurrent admission waits on the slot's row and
            // then finds it held.
            let admitted = try await Self.first(
                String.self,
                connection.query(
                    """
                    WITH slot AS (
                        INSERT INTO reshard_meta_active_migration(slot, id) VALUES (1, \(id))
                        ON CONFLICT (slot) DO UPDATE SET id = excluded.id WHERE reshard_meta_active_migration.id = excluded.id
                        RETURNING id)
                    INSERT INTO reshard_meta_migrations(id, journal) SELECT id, \(journal) FROM slot
                    ON CONFLICT (id) DO UPDATE SET journal = excluded.journal
                    RETURNING id
                    """, logger: self.logger))
            if admitted != nil { return nil }
            let holder = try await Self.first(
                String.self, connection.query("SELECT id FROM reshard_meta_active_migration WHERE slot = 1", logger: self.logger))
            return holder ?? ""
        }
    }

    public func releaseMigration(id: String) async throws {
        try await run { connection in
            _ = try await connection.query(
                "DELETE FROM reshard_meta_active_migration WHERE slot = 1 AND id = \(id)", logger: self.logger)
        }
    }

    public func migrations() async throws -> [(id: String, journal: String)] {
        try await run { connection in
            var all: [(id: String, journal: String)] = []
            let rows = try await connection.query("SELECT id, journal FROM reshard_meta_migrations ORDER BY seq", logger: self.logger)
            for try await (id, journal) in rows.decode((String, String).self) { all.append((id, journal)) }
            return all
        }
    }

    public func directive() async throws -> String? {
        try await run { connection in
            try await Self.first(String.self, connection.query("SELECT body FROM reshard_meta_directive WHERE id = 1", logger: self.logger))
        }
    }

    public func saveDirective(_ text: String?) async throws {
        try await write(notifying: .directive) { connection in
            if let text {
                try await connection.query(
                    """
                    INSERT INTO reshard_meta_directive(id, body) VALUES(1, \(text))
                    ON CONFLICT (id) DO UPDATE SET body = excluded.body
                    """, logger: self.logger)
            } else {
                try await connection.query("DELETE FROM reshard_meta_directive", logger: self.logger)
            }
        }
    }

    public func saveReport(router: String, report: String) async throws {
        try await run { connection in
            // The server's clock: every router's report is stamped by one clock, so their ages
            // compare even when the routers' hosts disagree about the time.
            _ = try await connection.query(
                """
                INSERT INTO reshard_meta_router_reports(router, report, saved_ms)
                VALUES(\(router), \(report), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                ON CONFLICT (router) DO UPDATE SET report = excluded.report, saved_ms = excluded.saved_ms
                """, logger: self.logger)
        }
    }

    public func reports() async throws -> [RouterReport] {
        try await run { connection in
            var reports: [RouterReport] = []
            let rows = try await connection.query(
                "SELECT router, report, saved_ms FROM reshard_meta_router_reports ORDER BY router", logger: self.logger)
            for try await (router, report, saved) in rows.decode((String, String, Int64).self) {
                reports.append(RouterReport(router: router, report: report, savedAtMillis: UInt64(max(0, saved))))
            }
            return reports
        }
    }

    // MARK: - Watching, leadership, closing

    /// Changes committed by any process using this database. The first call starts the store's
    /// one listener connection; the stream begins with every kind once as it connects.
    public func watch() -> AsyncStream<MetadataChange> {
        // The stream exists before the listener starts, so it gets the listener's first round.
        let stream = watchers.stream()
        listener.start()
        return stream
    }

    /// A lease on a session advisory lock of `name`, held on a connection of its own.
    public func leadership(_ name: String) -> any LeadershipLease {
        PostgresLeadership(name: name, endpoint: endpoint, registry: leases, logger: logger)
    }

    /// Stops the listener, gives up every lease this store holds, finishes watch streams and
    /// closes the pool. Calling it again does nothing more.
    public func close() async {
        await listener.stop()
        for lease in leases.close() { await lease.release() }
        watchers.finish()
        await pool.close()
    }

    // MARK: - Helpers

    /// Runs `body` on a pooled connection (autocommit: each statement its own transaction),
    /// with the store's errors.
    private func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await failures {
            try await self.pool.withConnection { connection in
                try await PostgresSession.guarded(connection) { try await body(connection) }
            }
        }
    }

    /// Runs `body` in a transaction that also notifies `change`: PostgreSQL delivers the
    /// notification on commit only, so no watcher hears of a change that was rolled back.
    private func write(notifying change: MetadataChange, _ body: @escaping @Sendable (PostgresConnection) async throws -> Void)
        async throws
    {
        let payload = change.rawValue
        try await failures {
            try await Self.transaction(self.pool, logger: self.logger) { connection in
                try await body(connection)
                try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: self.logger)
            }
        }
    }

    /// `PostgresPool.transaction`, but it throws rather than hangs when the connection is lost
    /// (see `PostgresSession.guarded`).
    private static func transaction<T: Sendable>(
        _ pool: PostgresPool, logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await pool.withConnection { connection in
            try await PostgresSession.guarded(connection) {
                try await connection.query("BEGIN", logger: logger)
                do {
                    let result = try await body(connection)
                    try await connection.query("COMMIT", logger: logger)
                    return result
                } catch {
                    // A closed connection has rolled back already; a query written to it would
                    // never be answered.
                    if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                    throw error
                }
            }
        }
    }

    /// Passes the metadata's own errors through and names the endpoint in every other one.
    private func failures<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as MetadataError {
            throw error
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.backend("metadata at \(endpoint): \(PostgresSession.reason(error))")
        }
    }

    private static func first<T: PostgresDecodable & Sendable>(_ type: T.Type, _ rows: PostgresRowSequence) async throws -> T? {
        var found: T?
        for try await value in rows.decode(T.self) where found == nil { found = value }
        return found
    }
}

/// Hears `NOTIFY` on the metadata channel over one connection of its own (a pooled connection
/// would be handed to other queries between uses and miss notifications) and passes each change
/// to the store's watchers. When the connection is lost it reconnects with a bounded backoff and,
/// once listening again, tells watchers of every kind, since anything may have changed meanwhile.
///
/// Buffers stay bounded: PostgresNIO's notification stream is drained as fast as notifications
/// arrive, into `MetadataWatchers`, which keeps at most one round of kinds per watcher.
final class PostgresMetadataListener: Sendable {
    private enum State {
        case idle
        case running(Task<Void, Never>)
        case stopped
    }

    private let endpoint: PostgresEndpoint
    private let watchers: MetadataWatchers
    private let logger: Logger
    private let state = Mutex<State>(.idle)

    /// First wait before reconnecting; it doubles up to `longestBackoff`.
    static let firstBackoff = Duration.milliseconds(100)
    static let longestBackoff = Duration.seconds(5)
    /// How often a quiet connection is checked: a connection lost without a TCP reset would
    /// otherwise leave the listener waiting for notifications that never come.
    static let heartbeat = Duration.seconds(5)
    /// The listener's session name in `pg_stat_activity`.
    static let application = "reshard-metadata-listener"

    init(endpoint: PostgresEndpoint, watchers: MetadataWatchers, logger: Logger) {
        self.endpoint = endpoint
        self.watchers = watchers
        self.logger = logger
    }

    /// Starts listening, unless already started or stopped.
    func start() {
        state.withLock { state in
            guard case .idle = state else { return }
            state = .running(Task { await self.run() })
        }
    }

    /// Stops listening for good and waits for the connection to close.
    func stop() async {
        let task = state.withLock { state -> Task<Void, Never>? in
            defer { state = .stopped }
            if case .running(let task) = state { return task }
            return nil
        }
        task?.cancel()
        await task?.value
    }

    private func run() async {
        var backoff = Self.firstBackoff
        var reachable = true
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                let connection = try await PostgresSession.connect(to: endpoint, as: Self.application, logger: logger)
                if !reachable { logger.info("metadata notifications from \(endpoint) resumed") }
                reachable = true
                await listen(on: connection)
                try? await connection.close()
            } catch {
                if reachable, !Task.isCancelled {
                    logger.warning("metadata notifications from \(endpoint) stopped, reconnecting: \(PostgresSession.reason(error))")
                }
                reachable = false
            }
            // A session that lasted a while was healthy: its loss starts the backoff afresh. One
            // dropped as soon as it opened keeps doubling the wait.
            if ContinuousClock.now - started > Self.longestBackoff { backoff = Self.firstBackoff }
            do {
                try await Task.sleep(for: backoff)
            } catch {
                return
            }
            backoff = min(backoff * 2, Self.longestBackoff)
        }
    }

    /// Listens until the connection is lost or the task is cancelled.
    private func listen(on connection: PostgresConnection) async {
        let (watchers, logger) = (self.watchers, self.logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await PostgresSession.guarded(connection, abandonOnCancel: true) {
                        try await connection.listen(on: PostgresMetadataStore.channel) { notifications in
                            // LISTEN is in place: whatever changed before it could not be heard.
                            for change in MetadataChange.allCases { watchers.yield(change) }
                            for try await notification in notifications {
                                if let change = MetadataChange(rawValue: notification.payload) {
                                    watchers.yield(change)
                                } else {
                                    // A kind from a newer release: re-reading everything is always safe.
                                    for change in MetadataChange.allCases { watchers.yield(change) }
                                }
                            }
                        }
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: Self.heartbeat)
                        guard await PostgresSession.isAlive(connection, within: Self.heartbeat, logger: logger) else {
                            throw StoreError.backend("metadata notification connection stopped answering")
                        }
                    }
                }
                // Whichever ends first (the listen when the connection drops, the heartbeat when
                // it stops answering) ends the session.
                _ = try await group.next()
                group.cancelAll()
            }
        } catch {
            if !Task.isCancelled {
                logger.warning("metadata notifications from \(endpoint) interrupted, reconnecting: \(PostgresSession.reason(error))")
            }
        }
    }
}
