import Foundation
import Logging
import PostgresNIO
import ReshardCore

/// Cluster metadata in a PostgreSQL database, shared by every process of the cluster: tables,
/// shards, shard maps by generation, migration journals and logs, the directive and router
/// reports, in tables named `reshard_meta_…`.
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
    /// The newest map this handle published or read (`RememberedMap`).
    let remembered = RememberedMap()
    private let listener: PostgresMetadataListener
    private let leases: PostgresLeaseRegistry
    /// How many of the newest events the event log keeps.
    let eventsRetained: Int

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
        // A generation kept as the moves from the one it replaced (`ShardMapRecords`).
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_shard_map_changes(generation bigint PRIMARY KEY, base bigint NOT NULL, moves text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_migrations(
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, journal text NOT NULL)
        """,
        // A journal's plan apart from the rest (`MigrationJournalText`); NULL: the journal column
        // holds the whole text, as every journal did before.
        """
        ALTER TABLE reshard_meta_migrations ADD COLUMN IF NOT EXISTS plan text
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
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_log_heads(log text COLLATE "C" PRIMARY KEY, last bigint NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_log_entries(
            log text COLLATE "C" NOT NULL, position bigint NOT NULL, body text NOT NULL, PRIMARY KEY (log, position))
        """,
        // The head's one row keeps the last position after older events are trimmed, so
        // positions are never reused, and its row lock serializes appends (see `appendEvent`).
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_event_head(id integer PRIMARY KEY CHECK (id = 1), last bigint NOT NULL)
        """,
        """
        INSERT INTO reshard_meta_event_head(id, last) VALUES (1, 0) ON CONFLICT (id) DO NOTHING
        """,
        """
        CREATE TABLE IF NOT EXISTS reshard_meta_events(position bigint PRIMARY KEY, at_ms bigint NOT NULL, body text NOT NULL)
        """,
    ]

    /// Connects to `endpoint` and creates the metadata tables if they are missing. Throws
    /// `StoreError.backend` naming the endpoint (without its password) when the database cannot
    /// be reached within the pool's lease timeout.
    public static func open(endpoint: PostgresEndpoint, logger: Logger) async throws -> PostgresMetadataStore {
        try await open(endpoint: endpoint, logger: logger, eventsRetained: MetadataEvent.retained)
    }

    /// `open(endpoint:logger:)`, keeping the newest `eventsRetained` events rather than
    /// `MetadataEvent.retained`: tests see the log trimmed without appending ten thousand events.
    package static func open(endpoint: PostgresEndpoint, logger: Logger, eventsRetained: Int) async throws
        -> PostgresMetadataStore
    {
        precondition(eventsRetained >= 1, "the event log keeps at least its newest event")
        let store = PostgresMetadataStore(endpoint: endpoint, logger: logger, eventsRetained: eventsRetained)
        do {
            try await store.pool.transaction { connection in
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

    private init(endpoint: PostgresEndpoint, logger: Logger, eventsRetained: Int) {
        self.endpoint = endpoint
        self.logger = logger
        self.eventsRetained = eventsRetained
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

    public func publishLayout(_ table: TableDefinition, replacing expected: UInt64) async throws {
        let name = table.name.rawValue
        let text = try MetadataJSON.encode(table)
        let event = try MetadataJSON.encode(MetadataEvent.switched(table, from: expected))
        try await write(notifying: .tables) { connection in
            // FOR UPDATE: two publishers compare against the same stored layout one at a time.
            var stored: TableDefinition?
            let rows = try await connection.query(
                "SELECT definition FROM reshard_meta_tables WHERE name = \(name) FOR UPDATE", logger: self.logger)
            for try await found in rows.decode(String.self) { stored = try MetadataJSON.decode(TableDefinition.self, found) }
            if stored == table { return }
            guard let stored, stored.layoutGeneration == expected else {
                throw MetadataError.layoutConflict(table.name, expected: expected, found: stored?.layoutGeneration)
            }
            try await connection.query(
                "UPDATE reshard_meta_tables SET definition = \(text) WHERE name = \(name)", logger: self.logger)
            _ = try await self.appendEvent(event, on: connection)
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
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await failures { try await self.pool.withConnection(body) }
    }

    /// Runs `body` in a transaction that also notifies `change`: PostgreSQL delivers the
    /// notification on commit only, so no watcher hears of a change that was rolled back.
    func write(notifying change: MetadataChange, _ body: @escaping @Sendable (PostgresConnection) async throws -> Void)
        async throws
    {
        let payload = change.rawValue
        try await failures {
            try await self.pool.transaction { connection in
                try await body(connection)
                try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: self.logger)
            }
        }
    }

    /// Runs `body` in a transaction that notifies nobody (what changes no watcher waits for),
    /// with the store's errors.
    func inTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await failures { try await self.pool.transaction("", body) }
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

    static func first<T: PostgresDecodable & Sendable>(_ type: T.Type, _ rows: PostgresRowSequence) async throws -> T? {
        var found: T?
        for try await value in rows.decode(T.self) where found == nil { found = value }
        return found
    }
}
