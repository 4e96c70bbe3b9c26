import Foundation
import GRDB
import ReshardCore

/// Shard maps by generation, kept as whole texts and as moves (`ShardMapRecords`).
extension SQLiteMetadataStore {
    public func currentShardMap() async throws -> ShardMap? {
        guard let latest = try await pool.read({ db in try Self.latestGeneration(db) }) else { return nil }
        // Routers ask this by the hundred while writes are fenced: a generation already at hand
        // costs one small query, and one kept as moves from it the moves.
        guard let map = try await ShardMapRecords.map(latest, known: remembered.kept, rows: Rows(pool: pool)) else {
            throw MetadataError.corrupt("shard map generation \(latest) is listed but cannot be read")
        }
        remembered.remember(map)
        return map
    }

    public func shardMap(generation: UInt64) async throws -> ShardMap? {
        try await ShardMapRecords.map(generation, known: remembered.kept, rows: Rows(pool: pool))
    }

    public func publish(_ map: ShardMap, replacing expected: UInt64?) async throws {
        let prepared = try await preparedPublish(map, replacing: expected, remembered: remembered)
        let keptMoves = try await pool.write { db -> Bool in
            // The read and the insert share one write transaction: two publishers cannot both win.
            let current = try Self.latestGeneration(db)
            guard current == expected, map.generation > (current ?? 0) else {
                throw MetadataError.generationConflict(expected: expected, found: current)
            }
            var keptMoves = false
            let newestText = try Int64.fetchOne(db, sql: "SELECT max(generation) FROM shard_maps")
            let chain =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM shard_map_changes WHERE generation > ?", arguments: [newestText ?? Int64.min]) ?? 0
            if let moves = ShardMapRecords.keptMoves(map, prepared, chain: Int(chain)), let expected {
                try db.execute(
                    sql: "INSERT INTO shard_map_changes(generation, base, moves) VALUES(?, ?, ?)",
                    arguments: [Int64(bitPattern: map.generation), Int64(bitPattern: expected), moves])
                keptMoves = true
            } else {
                try db.execute(
                    sql: "INSERT INTO shard_maps(generation, map) VALUES(?, ?)",
                    arguments: [Int64(bitPattern: map.generation), StoredShardMap.encode(map)])
            }
            _ = try self.appendEvent(prepared.event, in: db)
            return keptMoves
        }
        if keptMoves { remembered.keptAsMoves(map.generation) }
        remembered.remember(map)
        watchers.yield(.events)
        watchers.yield(.shardMap)
    }

    public func snapshotShardMaps() async throws {
        // Only after this handle kept a generation as moves: a cutover's release calls this
        // every time, and most maps are small enough to be kept whole.
        guard remembered.snapshotDue else { return }
        let newest = try await pool.read { db -> (generation: UInt64, whole: Bool)? in
            guard let latest = try Self.latestGeneration(db) else { return nil }
            let whole = try Bool.fetchOne(
                db, sql: "SELECT EXISTS(SELECT 1 FROM shard_maps WHERE generation = ?)", arguments: [Int64(bitPattern: latest)])
            return (latest, whole == true)
        }
        guard let newest else { return }
        if !newest.whole, let map = try await shardMap(generation: newest.generation) {
            let text = StoredShardMap.encode(map)
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO shard_maps(generation, map) VALUES(?, ?) ON CONFLICT(generation) DO NOTHING",
                    arguments: [Int64(bitPattern: newest.generation), text])
            }
        }
        remembered.snapshotted(through: newest.generation)
    }

    /// The newest published generation, whichever table keeps it.
    private static func latestGeneration(_ db: Database) throws -> UInt64? {
        try Int64.fetchOne(
            db,
            sql: """
                SELECT max(generation) FROM (
                    SELECT max(generation) AS generation FROM shard_maps
                    UNION ALL SELECT max(generation) FROM shard_map_changes)
                """
        ).map { UInt64(bitPattern: $0) }
    }

    /// Each read its own snapshot: a published generation's rows never change, and a snapshot
    /// only adds the whole text of a generation already kept as moves.
    private struct Rows: ShardMapRows {
        let pool: DatabasePool

        func change(_ generation: UInt64) async throws -> ShardMapRecords.Change? {
            try await pool.read { db in
                try Row.fetchOne(
                    db, sql: "SELECT generation, base, moves FROM shard_map_changes WHERE generation = ?",
                    arguments: [Int64(bitPattern: generation)]
                ).map(Self.change)
            }
        }

        /// Throwing, not trapping, on a value of the wrong type: the file may be damaged.
        private static func change(_ row: Row) throws -> ShardMapRecords.Change {
            do {
                return ShardMapRecords.Change(
                    generation: try row.decode(atIndex: 0), base: try row.decode(atIndex: 1), moves: try row.decode(atIndex: 2))
            } catch {
                throw MetadataError.corrupt("a shard map change: \(error)")
            }
        }

        func text(_ generation: UInt64) async throws -> String? {
            try await pool.read { db in
                try String.fetchOne(db, sql: "SELECT map FROM shard_maps WHERE generation = ?", arguments: [Int64(bitPattern: generation)])
            }
        }

        func newestText(below generation: UInt64) async throws -> UInt64? {
            try await pool.read { db in
                try Int64.fetchOne(
                    db, sql: "SELECT max(generation) FROM shard_maps WHERE generation < ?", arguments: [Int64(bitPattern: generation)]
                ).map { UInt64(bitPattern: $0) }
            }
        }

        func changes(after: UInt64, through: UInt64) async throws -> [ShardMapRecords.Change] {
            try await pool.read { db in
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT generation, base, moves FROM shard_map_changes WHERE generation > ? AND generation <= ? ORDER BY generation",
                    arguments: [Int64(bitPattern: after), Int64(bitPattern: through)]
                ).map(Self.change)
            }
        }
    }
}
