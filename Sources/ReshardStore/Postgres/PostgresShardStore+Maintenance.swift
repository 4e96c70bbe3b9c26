import Foundation
import PostgresNIO
import ReshardCore

/// Writes that are not client changes: cleanup of moved ranges, tombstone purge and repair.
extension PostgresShardStore {
    public func deleteRange(_ range: HashRange, limit: Int) async throws -> Int {
        try await physicallyDelete(where: "h >= $1 AND h <= $2", [KeyHash.ordered(range.start), KeyHash.ordered(range.last)], limit: limit)
    }

    public func purgeTombstones(before version: UInt64, limit: Int) async throws -> Int {
        try await physicallyDelete(where: "body IS NULL AND version < $1", [Int64(bitPattern: version)], limit: limit)
    }

    public func clearTable(_ table: TableName, limit: Int) async throws -> Int {
        guard try await tables().contains(table) else { return 0 }
        let name = Self.quoted(table)
        var binds = PostgresBindings()
        binds.append(Int64(max(0, limit)))
        let query = PostgresQuery(
            unsafeSQL: """
                WITH gone AS (DELETE FROM \(name) WHERE ctid IN (SELECT ctid FROM \(name) LIMIT $1) RETURNING 1)
                SELECT count(*) FROM gone
                """, binds: binds)
        return try await statement(table) { connection in try await Self.count(connection.query(query, logger: self.logger)) }
    }

    public func dropTable(_ table: TableName) async throws {
        var name = PostgresBindings()
        name.append(table.rawValue)
        let binds = name
        try await pool.transaction(
            "",
            { connection in
                // The lock ensureTable takes, so a table is never created and dropped at once.
                try await connection.query("SELECT pg_advisory_xact_lock(7405128371)", logger: self.logger)
                try await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(Self.quoted(table))"), logger: self.logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DELETE FROM _reshard_tables WHERE name = $1", binds: binds), logger: self.logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DELETE FROM _reshard_retired WHERE tbl = $1", binds: binds), logger: self.logger)
            })
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
            var changed = try await self.upsert(
                connection, Self.latest(rows).sorted { $0.pk.utf8.lexicographicallyPrecedes($1.pk.utf8) }, into: name, onlyNewer: false)
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
}
