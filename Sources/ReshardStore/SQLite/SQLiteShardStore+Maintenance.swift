import Foundation
import GRDB
import ReshardCore

/// Writes that are not client changes: cleanup of moved ranges, tombstone purge and repair.
extension SQLiteShardStore {
    public func deleteRange(_ range: HashRange, limit: Int) async throws -> Int {
        try await physicallyDelete(
            where: "h >= ? AND h <= ?", [KeyHash.ordered(range.start), KeyHash.ordered(range.last)], limit: limit)
    }

    public func purgeTombstones(before version: UInt64, limit: Int) async throws -> Int {
        // The partial index on tombstones keeps this from scanning live rows.
        try await physicallyDelete(where: "body IS NULL AND version < ?", [Int64(bitPattern: version)], limit: limit)
    }

    public func clearTable(_ table: TableName, limit: Int) async throws -> Int {
        guard try await tables().contains(table) else { return 0 }
        return try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM \(Self.quoted(table)) WHERE rowid IN (SELECT rowid FROM \(Self.quoted(table)) LIMIT ?)",
                arguments: [max(0, limit)])
            return db.changesCount
        }
    }

    public func dropTable(_ table: TableName) async throws {
        try await pool.write { db in
            // Its triggers go with it.
            try db.execute(sql: "DROP TABLE IF EXISTS \(Self.quoted(table))")
            try db.execute(sql: "DELETE FROM _reshard_tables WHERE name = ?", arguments: [table.rawValue])
            try db.execute(sql: "DELETE FROM _reshard_retired WHERE tbl = ?", arguments: [table.rawValue])
        }
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
}
