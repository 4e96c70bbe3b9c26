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
}
