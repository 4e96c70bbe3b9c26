import Foundation
import GRDB
import ReshardCore

/// Cluster metadata in one SQLite file: tables, shards, and every published shard map.
///
/// One process serves a SQLite metadata file, so watchers are told of changes made through this
/// handle only, and leadership is a flag of this handle.
public final class SQLiteMetadataStore: MetadataStore {
    let pool: DatabasePool
    let watchers = MetadataWatchers()
    private let leaders = ProcessLeaders()
    /// The newest map this handle published or read (`RememberedMap`).
    let remembered = RememberedMap()
    /// How many of the newest events the event log keeps.
    let eventsRetained: Int

    /// Opens (creating if needed) the metadata file at `path`.
    public convenience init(path: String) throws {
        try self.init(path: path, eventsRetained: MetadataEvent.retained)
    }

    /// Opens the metadata file at `path`, keeping the newest `eventsRetained` events rather than
    /// `MetadataEvent.retained`: tests see the log trimmed without appending ten thousand events.
    package init(path: String, eventsRetained: Int) throws {
        precondition(eventsRetained >= 1, "the event log keeps at least its newest event")
        self.eventsRetained = eventsRetained
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-metadata") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tables(name TEXT PRIMARY KEY NOT NULL, definition TEXT NOT NULL);
                    CREATE TABLE shards(id TEXT PRIMARY KEY NOT NULL, backend TEXT NOT NULL, address TEXT NOT NULL);
                    CREATE TABLE shard_maps(generation INTEGER PRIMARY KEY NOT NULL, map TEXT NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v2-migrations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE migrations(
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, journal TEXT NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v3-routers") { db in
            try db.execute(
                sql: """
                    CREATE TABLE directive(id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
                    CREATE TABLE router_reports(router TEXT PRIMARY KEY NOT NULL, report TEXT NOT NULL, saved_ms INTEGER NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v4-active-migration") { db in
            // One row at most: the migration that runs now. Admission takes it in the same
            // transaction that journals the migration, so two creates cannot both start.
            try db.execute(sql: "CREATE TABLE active_migration(slot INTEGER PRIMARY KEY CHECK (slot = 1), id TEXT NOT NULL)")
        }
        migrator.registerMigration("v5-migration-logs") { db in
            // The head keeps a log's last position after its entries are trimmed, so positions
            // are never reused. Entries are an ordinary rowid table: bodies can be kilobytes,
            // and SQLite advises WITHOUT ROWID only for rows well under a twentieth of a page.
            try db.execute(
                sql: """
                    CREATE TABLE log_heads(log TEXT PRIMARY KEY NOT NULL, last INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE log_entries(
                        log TEXT NOT NULL, position INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(log, position));
                    """
            )
        }
        migrator.registerMigration("v6-events") { db in
            // The head keeps the last position after older events are trimmed, so positions are
            // never reused; `position` is the rowid, so a read after a position is a range scan.
            try db.execute(
                sql: """
                    CREATE TABLE event_head(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
                    INSERT INTO event_head(id, last) VALUES(1, 0);
                    CREATE TABLE events(position INTEGER PRIMARY KEY NOT NULL, at_ms INTEGER NOT NULL, body TEXT NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v7-shard-map-changes") { db in
            // A generation kept as the moves from the one it replaced (`ShardMapRecords`).
            try db.execute(
                sql: """
                    CREATE TABLE shard_map_changes(
                        generation INTEGER PRIMARY KEY NOT NULL, base INTEGER NOT NULL, moves TEXT NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v8-migration-plans") { db in
            // A journal's plan apart from the rest (`MigrationJournalText`); no row: the journal
            // column holds the whole text, as every journal did before. Its own table, not a
            // column: SQLite rewrites a whole record on update, so an 11 MB plan beside the
            // journal made every small save write it again (8.8 ms each at 1,000 shards).
            try db.execute(sql: "CREATE TABLE migration_plans(id TEXT PRIMARY KEY NOT NULL, plan TEXT NOT NULL)")
        }
        try migrator.migrate(pool)
    }

    public func directive() async throws -> String? {
        try await pool.read { db in try String.fetchOne(db, sql: "SELECT body FROM directive WHERE id = 1") }
    }

    public func saveDirective(_ text: String?) async throws {
        try await pool.write { db in
            if let text {
                try db.execute(
                    sql: "INSERT INTO directive(id, body) VALUES(1, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                    arguments: [text])
            } else {
                try db.execute(sql: "DELETE FROM directive")
            }
        }
        watchers.yield(.directive)
    }

    public func saveReport(router: String, report: String) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO router_reports(router, report, saved_ms) VALUES(?, ?, ?)
                    ON CONFLICT(router) DO UPDATE SET report = excluded.report, saved_ms = excluded.saved_ms
                    """,
                arguments: [router, report, now])
        }
    }

    public func reports() async throws -> [RouterReport] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT router, report, saved_ms FROM router_reports ORDER BY router").map {
                RouterReport(
                    router: try $0.decode(forColumn: "router"), report: try $0.decode(forColumn: "report"),
                    savedAtMillis: UInt64(max(0, try $0.decode(Int64.self, forColumn: "saved_ms"))))
            }
        }
    }

    public func watch() -> AsyncStream<MetadataChange> { watchers.stream() }

    public func leadership(_ name: String) -> any LeadershipLease { ProcessLeadership(name: name, holders: leaders) }

    public func close() async { watchers.finish() }

    public func saveMigration(id: String, progress: String, plan: String?) async throws {
        try await pool.write { db in
            if let plan {
                try db.execute(
                    sql: "INSERT INTO migrations(id, journal) VALUES(?, ?) ON CONFLICT(id) DO UPDATE SET journal = excluded.journal",
                    arguments: [id, progress])
                try db.execute(
                    sql: "INSERT INTO migration_plans(id, plan) VALUES(?, ?) ON CONFLICT(id) DO UPDATE SET plan = excluded.plan",
                    arguments: [id, plan])
            } else {
                try db.execute(
                    sql: "UPDATE migrations SET journal = ? WHERE id = ? AND EXISTS (SELECT 1 FROM migration_plans WHERE id = ?)",
                    arguments: [progress, id, id])
                if db.changesCount == 0 { throw MetadataError.planMissing(id) }
            }
        }
    }

    public func admitMigration(id: String, journal: String) async throws -> String? {
        try await pool.write { db in
            if let holder = try String.fetchOne(db, sql: "SELECT id FROM active_migration WHERE slot = 1"), holder != id {
                return holder
            }
            try db.execute(sql: "INSERT OR REPLACE INTO active_migration(slot, id) VALUES(1, ?)", arguments: [id])
            try db.execute(
                sql: """
                    INSERT INTO migrations(id, journal) VALUES(?, ?)
                    ON CONFLICT(id) DO UPDATE SET journal = excluded.journal
                    """,
                arguments: [id, journal])
            try db.execute(sql: "DELETE FROM migration_plans WHERE id = ?", arguments: [id])
            return nil
        }
    }

    public func releaseMigration(id: String) async throws {
        try await pool.write { db in try db.execute(sql: "DELETE FROM active_migration WHERE slot = 1 AND id = ?", arguments: [id]) }
    }

    public func migrations() async throws -> [(id: String, journal: String)] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT m.id, m.journal, p.plan FROM migrations m LEFT JOIN migration_plans p ON p.id = m.id ORDER BY m.seq"
            ).map { row in
                let id: String = try row.decode(forColumn: "id")
                let journal: String = try row.decode(forColumn: "journal")
                guard let plan = try row.decode(String?.self, forColumn: "plan") else { return (id, journal) }
                return (id, MigrationJournalText.joined(plan: plan, progress: journal))
            }
        }
    }

    public func tables() async throws -> [ReshardCore.TableDefinition] {
        let texts = try await pool.read { db in try String.fetchAll(db, sql: "SELECT definition FROM tables ORDER BY name") }
        return try texts.map { try MetadataJSON.decode(ReshardCore.TableDefinition.self, $0) }
    }

    public func createTable(_ table: ReshardCore.TableDefinition) async throws {
        let text = try MetadataJSON.encode(table)
        try await pool.write { db in
            let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM tables WHERE name = ?", arguments: [table.name.rawValue]) ?? false
            if exists { throw MetadataError.tableExists(table.name) }
            try db.execute(sql: "INSERT INTO tables(name, definition) VALUES(?, ?)", arguments: [table.name.rawValue, text])
        }
        watchers.yield(.tables)
    }

    public func publishLayout(_ table: ReshardCore.TableDefinition, replacing expected: UInt64) async throws {
        let text = try MetadataJSON.encode(table)
        let event = try MetadataJSON.encode(MetadataEvent.switched(table, from: expected))
        let switched = try await pool.write { db -> Bool in
            let stored = try String.fetchOne(db, sql: "SELECT definition FROM tables WHERE name = ?", arguments: [table.name.rawValue])
                .map { try MetadataJSON.decode(ReshardCore.TableDefinition.self, $0) }
            if stored == table { return false }
            guard let stored, stored.layoutGeneration == expected else {
                throw MetadataError.layoutConflict(table.name, expected: expected, found: stored?.layoutGeneration)
            }
            try db.execute(sql: "UPDATE tables SET definition = ? WHERE name = ?", arguments: [text, table.name.rawValue])
            _ = try self.appendEvent(event, in: db)
            return true
        }
        // `.events` first, as PostgreSQL notifies it: whoever hears the other kind has heard both.
        if switched { watchers.yield(.events) }
        watchers.yield(.tables)
    }

    public func shards() async throws -> [ShardRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, backend, address FROM shards ORDER BY id").map { row in
                let raw: String = try row.decode(forColumn: "id")
                let backend: String = try row.decode(forColumn: "backend")
                guard let id = ShardID(raw), let location = ShardLocation(backend: backend, address: try row.decode(forColumn: "address"))
                else {
                    throw MetadataError.corrupt("shard \(raw) (\(backend))")
                }
                return ShardRecord(id: id, location: location)
            }
        }
    }

    public func addShard(_ shard: ShardRecord) async throws {
        try await pool.write { db in
            let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM shards WHERE id = ?", arguments: [shard.id.rawValue]) ?? false
            if exists { throw MetadataError.shardExists(shard.id) }
            try db.execute(
                sql: "INSERT INTO shards(id, backend, address) VALUES(?, ?, ?)",
                arguments: [shard.id.rawValue, shard.location.backend, shard.location.address]
            )
        }
        watchers.yield(.shards)
    }
}
