import Foundation
import Logging
import PostgresNIO
import ReshardCore

/// Shard maps by generation, kept as whole texts and as moves (`ShardMapRecords`).
extension PostgresMetadataStore {
    public func currentShardMap() async throws -> ShardMap? {
        let known = remembered.kept
        let logger = logger
        // Routers ask this by the hundred while writes are fenced: a generation already at hand
        // costs one small query, and one kept as moves from it the moves.
        let map = try await run { connection in
            guard let latest = try await Self.latestGeneration(connection, logger: logger) else { return ShardMap?.none }
            guard let map = try await ShardMapRecords.map(latest, known: known, rows: Rows(connection: connection, logger: logger)) else {
                throw MetadataError.corrupt("shard map generation \(latest) is listed but cannot be read")
            }
            return map
        }
        remembered.remember(map)
        return map
    }

    public func shardMap(generation: UInt64) async throws -> ShardMap? {
        let known = remembered.kept
        let logger = logger
        return try await run { connection in
            try await ShardMapRecords.map(generation, known: known, rows: Rows(connection: connection, logger: logger))
        }
    }

    public func publish(_ map: ShardMap, replacing expected: UInt64?) async throws {
        let prepared = try await preparedPublish(map, replacing: expected, remembered: remembered)
        let generation = Int64(bitPattern: map.generation)
        let logger = logger
        let keptMoves = try await inTransaction { connection -> Bool in
            // The check and the insert share one transaction, and this lock (which conflicts
            // with itself and with every insert, not with reads) keeps a second publisher from
            // reading the same current generation before the first commits: two publishers
            // cannot both win, even with different new generations.
            try await connection.query("LOCK TABLE reshard_meta_shard_maps IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            // The newest generation and how many are kept as moves alone since the newest whole
            // text, in one round trip: this runs while writes are held.
            var found: (Int64?, Int64)?
            let rows = try await connection.query(
                """
                WITH whole AS (SELECT max(generation) AS g FROM reshard_meta_shard_maps),
                moves AS (SELECT max(generation) AS g FROM reshard_meta_shard_map_changes)
                SELECT greatest(whole.g, moves.g),
                    (SELECT count(*) FROM reshard_meta_shard_map_changes
                     WHERE generation > coalesce(whole.g, -9223372036854775808))
                FROM whole, moves
                """, logger: logger)
            for try await row in rows.decode((Int64?, Int64).self) where found == nil { found = row }
            let current = found?.0.map { UInt64(bitPattern: $0) }
            let chain = found?.1 ?? 0
            var keptMoves = false
            guard current == expected, map.generation > (current ?? 0) else {
                throw MetadataError.generationConflict(expected: expected, found: current)
            }
            if let moves = ShardMapRecords.keptMoves(map, prepared, chain: Int(chain)), let expected {
                let base = Int64(bitPattern: expected)
                try await connection.query(
                    "INSERT INTO reshard_meta_shard_map_changes(generation, base, moves) VALUES(\(generation), \(base), \(moves))",
                    logger: logger)
                keptMoves = true
            } else {
                let text = StoredShardMap.encode(map)
                try await connection.query(
                    "INSERT INTO reshard_meta_shard_maps(generation, map) VALUES(\(generation), \(text))", logger: logger)
            }
            _ = try await self.appendEvent(prepared.event, on: connection, alsoNotifying: .shardMap)
            return keptMoves
        }
        if keptMoves { remembered.keptAsMoves(map.generation) }
        remembered.remember(map)
    }

    public func snapshotShardMaps() async throws {
        // Only after this handle kept a generation as moves: a cutover's release calls this
        // every time, and most maps are small enough to be kept whole.
        guard remembered.snapshotDue else { return }
        let logger = logger
        let newest = try await run { connection -> (generation: UInt64, whole: Bool)? in
            guard let latest = try await Self.latestGeneration(connection, logger: logger) else { return nil }
            let stored = Int64(bitPattern: latest)
            let whole = try await Self.first(
                Bool.self,
                connection.query("SELECT EXISTS(SELECT 1 FROM reshard_meta_shard_maps WHERE generation = \(stored))", logger: logger))
            return (latest, whole == true)
        }
        guard let newest else { return }
        if !newest.whole, let map = try await shardMap(generation: newest.generation) {
            let text = StoredShardMap.encode(map)
            let stored = Int64(bitPattern: newest.generation)
            try await run { connection in
                try await connection.query(
                    "INSERT INTO reshard_meta_shard_maps(generation, map) VALUES(\(stored), \(text)) ON CONFLICT (generation) DO NOTHING",
                    logger: logger)
            }
        }
        remembered.snapshotted(through: newest.generation)
    }

    /// The newest published generation, whichever table keeps it.
    private static func latestGeneration(_ connection: PostgresConnection, logger: Logger) async throws -> UInt64? {
        try await first(
            Int64?.self,
            connection.query(
                """
                SELECT greatest((SELECT max(generation) FROM reshard_meta_shard_maps),
                                (SELECT max(generation) FROM reshard_meta_shard_map_changes))
                """, logger: logger)
        )?.map { UInt64(bitPattern: $0) }
    }

    /// The reads of one connection. Not one snapshot: a published generation's rows never
    /// change, and a snapshot only adds the whole text of a generation already kept as moves.
    private struct Rows: ShardMapRows {
        let connection: PostgresConnection
        let logger: Logger

        func change(_ generation: UInt64) async throws -> ShardMapRecords.Change? {
            let stored = Int64(bitPattern: generation)
            return try await changes(
                connection.query(
                    "SELECT generation, base, moves FROM reshard_meta_shard_map_changes WHERE generation = \(stored)", logger: logger)
            ).first
        }

        func text(_ generation: UInt64) async throws -> String? {
            let stored = Int64(bitPattern: generation)
            return try await PostgresMetadataStore.first(
                String.self, connection.query("SELECT map FROM reshard_meta_shard_maps WHERE generation = \(stored)", logger: logger))
        }

        func newestText(below generation: UInt64) async throws -> UInt64? {
            let stored = Int64(bitPattern: generation)
            return try await PostgresMetadataStore.first(
                Int64?.self,
                connection.query("SELECT max(generation) FROM reshard_meta_shard_maps WHERE generation < \(stored)", logger: logger)
            )?.map { UInt64(bitPattern: $0) }
        }

        func changes(after: UInt64, through: UInt64) async throws -> [ShardMapRecords.Change] {
            let (low, high) = (Int64(bitPattern: after), Int64(bitPattern: through))
            return try await changes(
                connection.query(
                    """
                    SELECT generation, base, moves FROM reshard_meta_shard_map_changes
                    WHERE generation > \(low) AND generation <= \(high) ORDER BY generation
                    """, logger: logger))
        }

        private func changes(_ rows: PostgresRowSequence) async throws -> [ShardMapRecords.Change] {
            var found: [ShardMapRecords.Change] = []
            for try await (generation, base, moves) in rows.decode((Int64, Int64, String).self) {
                found.append(ShardMapRecords.Change(generation: generation, base: base, moves: moves))
            }
            return found
        }
    }
}
