import PostgresNIO
import ReshardCore

/// What the replication slots of the shard's database keep: a slot nobody reads (a migration
/// that died without closing its stream, a forgotten subscriber) keeps every WAL segment after
/// its restart point until the disk fills, so `/metrics` shows each one.
extension PostgresShardStore {
    public func replicationSlots() async throws -> [ReplicationSlotUsage] {
        do {
            return try await pool.withConnection { connection in
                // Every slot of this database, Reshard's or not: any of them fills the same disk.
                let rows = try await connection.query(
                    """
                    SELECT slot_name::text, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
                    FROM pg_replication_slots WHERE database = current_database() ORDER BY slot_name
                    """, logger: self.logger)
                var slots: [ReplicationSlotUsage] = []
                for try await (name, active, retained) in rows.decode((String, Bool, Int64?).self) {
                    slots.append(ReplicationSlotUsage(name: name, active: active, retainedBytes: retained.map { UInt64(max(0, $0)) }))
                }
                return slots
            }
        } catch let error as PSQLError {
            throw StoreError.backend("shard \(shardID) cannot read its replication slots: \(Self.message(error))")
        }
    }
}
