import Foundation
import PostgresNIO
import ReshardCore

/// Shard maps by generation.
extension PostgresMetadataStore {
    public func currentShardMap() async throws -> ShardMap? {
        // Routers ask this by the hundred while writes are fenced: the map's text (megabytes at
        // 1,000 shards) is only read when its generation is not the one already at hand.
        let known = remembered.keptGeneration.map { Int64(bitPattern: $0) }
        let row = try await run { connection in
            let rows = try await connection.query(
                """
                SELECT generation, CASE WHEN generation = \(known) THEN NULL ELSE map END
                FROM reshard_meta_shard_maps ORDER BY generation DESC LIMIT 1
                """, logger: self.logger)
            var found: (Int64, String?)?
            for try await row in rows.decode((Int64, String?).self) where found == nil { found = row }
            return found
        }
        guard let (stored, text) = row else { return nil }
        let generation = UInt64(bitPattern: stored)
        guard let text else {
            if let map = remembered.kept(generation: generation) { return map }
            return try await shardMap(generation: generation)
        }
        let map = try StoredShardMap.decode(text)
        remembered.remember(map)
        return map
    }

    public func shardMap(generation: UInt64) async throws -> ShardMap? {
        let stored = Int64(bitPattern: generation)
        let text = try await run { connection in
            try await Self.first(
                String.self,
                connection.query("SELECT map FROM reshard_meta_shard_maps WHERE generation = \(stored)", logger: self.logger))
        }
        return try text.map { try StoredShardMap.decode($0) }
    }

    public func publish(_ map: ShardMap, replacing expected: UInt64?) async throws {
        let text = StoredShardMap.encode(map)
        let generation = Int64(bitPattern: map.generation)
        let prepared = try remembered.preparedEvent(map, replacing: expected)
        try await write(notifying: .shardMap) { connection in
            // The check and the insert share one transaction, and this lock (which conflicts
            // with itself and with every insert, not with reads) keeps a second publisher from
            // reading the same current generation before the first commits: two publishers
            // cannot both win, even with different new generations.
            try await connection.query("LOCK TABLE reshard_meta_shard_maps IN SHARE ROW EXCLUSIVE MODE", logger: self.logger)
            let current = try await Self.first(
                Int64?.self, connection.query("SELECT max(generation) FROM reshard_meta_shard_maps", logger: self.logger)
            )?.map { UInt64(bitPattern: $0) }
            guard current == expected, map.generation > (current ?? 0) else {
                throw MetadataError.generationConflict(expected: expected, found: current)
            }
            let body: String
            if let prepared {
                body = prepared
            } else {
                // The map replaced, read under the lock: the event's moves are exactly what changed.
                let stored = Int64(bitPattern: current ?? 0)
                let previous = try await Self.first(
                    String.self,
                    connection.query("SELECT map FROM reshard_meta_shard_maps WHERE generation = \(stored)", logger: self.logger)
                ).map { try StoredShardMap.decode($0) }
                body = try MetadataJSON.encode(MetadataEvent.published(map, replacing: previous))
            }
            try await connection.query(
                "INSERT INTO reshard_meta_shard_maps(generation, map) VALUES(\(generation), \(text))", logger: self.logger)
            _ = try await self.appendEvent(body, on: connection)
        }
        remembered.remember(map)
    }
}
