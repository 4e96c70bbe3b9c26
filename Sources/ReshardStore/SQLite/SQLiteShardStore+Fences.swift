import Foundation
import GRDB
import ReshardCore

/// Fences: per range, the shard-map generation below which client writes are refused.
extension SQLiteShardStore {
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
            try Row.fetchAll(db, sql: "SELECT range_start, range_last, generation FROM _reshard_fences ORDER BY range_start").map { row in
                // A damaged file is answered with an error, never a trap.
                let start = KeyHash.unordered(try row.decode(Int64.self, atIndex: 0))
                let last = KeyHash.unordered(try row.decode(Int64.self, atIndex: 1))
                guard start <= last else { throw StoreError.backend("\(path): a fence ends before it starts") }
                return Fence(
                    range: HashRange(start: start, last: last), generation: UInt64(bitPattern: try row.decode(Int64.self, atIndex: 2)))
            }
        }
    }

    static func fence(_ db: Database, over hash: UInt64) throws -> UInt64? {
        let statement = try db.cachedStatement(
            sql: "SELECT max(generation) FROM _reshard_fences WHERE range_start <= ? AND range_last >= ?")
        return try Int64.fetchOne(statement, arguments: [KeyHash.ordered(hash), KeyHash.ordered(hash)]).map { UInt64(bitPattern: $0) }
    }

    /// The layout generation `table` was retired for, if it was.
    static func retired(_ db: Database, _ table: TableName) throws -> UInt64? {
        let statement = try db.cachedStatement(sql: "SELECT layout FROM _reshard_retired WHERE tbl = ?")
        return try Int64.fetchOne(statement, arguments: [table.rawValue]).map { UInt64(bitPattern: $0) }
    }

    /// Throws `StoreError.retired` when `table` is retired: inside a client write's transaction.
    static func refuseRetired(_ db: Database, _ table: TableName) throws {
        if let layout = try retired(db, table) { throw StoreError.retired(table, layout: layout) }
    }

    @discardableResult
    public func retire(_ tables: [TableName], layout: UInt64) async throws -> UInt64 {
        // One write transaction: SQLite has one writer, so every client write the retirement let
        // through has committed before it, and none passes after it.
        try await pool.write { db in
            let upsert = try db.cachedStatement(
                sql:
                    "INSERT INTO _reshard_retired(tbl, layout) VALUES(?, ?) ON CONFLICT(tbl) DO UPDATE SET layout = max(layout, excluded.layout)"
            )
            for table in tables { try upsert.execute(arguments: [table.rawValue, Int64(bitPattern: layout)]) }
            return try Self.changePosition(db)
        }
    }

    public func unretire(_ tables: [TableName]) async throws {
        guard !tables.isEmpty else { return }
        try await pool.write { db in
            for table in tables { try db.execute(sql: "DELETE FROM _reshard_retired WHERE tbl = ?", arguments: [table.rawValue]) }
        }
    }

    public func retired() async throws -> [TableName: UInt64] {
        try await pool.read { db in
            var retired: [TableName: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT tbl, layout FROM _reshard_retired") {
                if let table = TableName(try row.decode(forColumn: "tbl")) {
                    retired[table] = UInt64(bitPattern: try row.decode(Int64.self, forColumn: "layout"))
                }
            }
            return retired
        }
    }
}
