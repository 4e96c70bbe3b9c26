import Foundation
import GRDB
import ReshardCore

/// Cluster metadata in one SQLite file: tables, shards, and every published shard map.
public final class SQLiteMetadataStore: MetadataStore {
    private let pool: DatabasePool

    /// Opens (creating if needed) the metadata file at `path`.
    public init(path: String) throws {
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
        try migrator.migrate(pool)
    }

    public func saveMigration(id: String, journal: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO migrations(id, journal) VALUES(?, ?) ON CONFLICT(id) DO UPDATE SET journal = excluded.journal",
                arguments: [id, journal])
        }
    }

    public func migrations() async throws -> [(id: String, journal: String)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, journal FROM migrations ORDER BY seq").map { ($0["id"], $0["journal"]) }
        }
    }

    public func tables() async throws -> [ReshardCore.TableDefinition] {
        let texts = try await pool.read { db in try String.fetchAll(db, sql: "SELECT definition FROM tables ORDER BY name") }
        return try texts.map { try Self.decode(ReshardCore.TableDefinition.self, $0) }
    }

    public func createTable(_ table: ReshardCore.TableDefinition) async throws {
        let text = try Self.encode(table)
        try await pool.write { db in
            let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM tables WHERE name = ?", arguments: [table.name.rawValue]) ?? false
            if exists { throw MetadataError.tableExists(table.name) }
            try db.execute(sql: "INSERT INTO tables(name, definition) VALUES(?, ?)", arguments: [table.name.rawValue, text])
        }
    }

    public func shards() async throws -> [ShardRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, backend, address FROM shards ORDER BY id").map { row in
                let raw: String = row["id"]
                let backend: String = row["backend"]
                guard let id = ShardID(raw), backend == "sqlite" else { throw MetadataError.corrupt("shard \(raw) (\(backend))") }
                return ShardRecord(id: id, location: .sqlite(path: row["address"]))
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
    }

    public func currentShardMap() async throws -> ShardMap? {
        let text = try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT map FROM shard_maps ORDER BY generation DESC LIMIT 1")
        }
        return try text.map { try Self.decode(ShardMap.self, $0) }
    }

    public func shardMap(generation: UInt64) async throws -> ShardMap? {
        let text = try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT map FROM shard_maps WHERE generation = ?", arguments: [Int64(bitPattern: generation)])
        }
        return try text.map { try Self.decode(ShardMap.self, $0) }
    }

    public func publish(_ map: ShardMap, replacing expected: UInt64?) async throws {
        let text = try Self.encode(map)
        try await pool.write { db in
            // The read and the insert share one write transaction: two publishers cannot both win.
            let current = try Int64.fetchOne(db, sql: "SELECT max(generation) FROM shard_maps").map { UInt64(bitPattern: $0) }
            guard current == expected, map.generation > (current ?? 0) else {
                throw MetadataError.generationConflict(expected: expected, found: current)
            }
            try db.execute(
                sql: "INSERT INTO shard_maps(generation, map) VALUES(?, ?)",
                arguments: [Int64(bitPattern: map.generation), text]
            )
        }
    }

    private static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw MetadataError.corrupt("\(type): \(error)")
        }
    }
}
