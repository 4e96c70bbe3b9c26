import Foundation
import PostgresNIO
import ReshardCore

/// Fences: per range, the shard-map generation below which client writes are refused.
extension PostgresShardStore {
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

    @discardableResult
    public func retire(_ tables: [TableName], layout: UInt64) async throws -> UInt64 {
        var binds = PostgresBindings()
        binds.append(tables.map(\.rawValue))
        binds.append(Int64(bitPattern: layout))
        let upsertBinds = binds
        return try await pool.transaction(
            "",
            { connection in
                // The fence's lock: it waits for every client write in flight, and a write after it
                // reads the retirement in the statement that takes the lock (see the type).
                try await connection.query("LOCK TABLE _reshard_fences IN EXCLUSIVE MODE", logger: self.logger)
                try await connection.query("SELECT set_config('synchronous_commit', 'on', true)", logger: self.logger)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO _reshard_retired(tbl, layout) SELECT t, $2 FROM unnest($1::text[]) AS r(t)
                            ON CONFLICT (tbl) DO UPDATE SET layout = greatest(_reshard_retired.layout, excluded.layout)
                            """, binds: upsertBinds), logger: self.logger)
                return try await Self.position(
                    connection.query(PostgresQuery(unsafeSQL: "SELECT \(self.positionExpression)"), logger: self.logger))
            })
    }

    public func unretire(_ tables: [TableName]) async throws {
        guard !tables.isEmpty else { return }
        var binds = PostgresBindings()
        binds.append(tables.map(\.rawValue))
        let query = PostgresQuery(unsafeSQL: "DELETE FROM _reshard_retired WHERE tbl = ANY($1)", binds: binds)
        try await pool.withConnection { connection in try await connection.query(query, logger: self.logger) }
    }

    public func retired() async throws -> [TableName: UInt64] {
        try await pool.withConnection { connection in
            var retired: [TableName: UInt64] = [:]
            for try await (name, layout) in try await connection.query("SELECT tbl, layout FROM _reshard_retired", logger: self.logger)
                .decode((String, Int64).self)
            {
                if let table = TableName(name) { retired[table] = UInt64(bitPattern: layout) }
            }
            return retired
        }
    }
}
