import ReshardCore
import ReshardStore
import Testing

@Suite struct MetadataStoreConformanceTests {
    @Test(arguments: StoreBackend.metadataCases)
    func tablesAreCreatedOnce(backend: StoreBackend) async throws {
        try await backend.withMetadata { meta in
            let orders = TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "customer_id")!
            try await meta.createTable(orders)
            await #expect(throws: MetadataError.tableExists(orders.name)) { try await meta.createTable(orders) }
            #expect(try await meta.tables() == [orders])
        }
    }

    @Test(arguments: StoreBackend.metadataCases)
    func shardsAreRegisteredOnce(backend: StoreBackend) async throws {
        try await backend.withMetadata { meta in
            let record = ShardRecord(id: ShardID("s1")!, location: .sqlite(path: "shards/s1.sqlite"))
            try await meta.addShard(record)
            await #expect(throws: MetadataError.shardExists(record.id)) { try await meta.addShard(record) }
            #expect(try await meta.shards() == [record])
        }
    }

    @Test(arguments: StoreBackend.metadataCases)
    func shardMapsArePublishedByCompareAndSet(backend: StoreBackend) async throws {
        try await backend.withMetadata { meta in
            let ids = [ShardID("s1")!, ShardID("s2")!]
            let first = try RingPlacement(virtualNodes: 16).shardMap(for: ids, generation: 1)
            #expect(try await meta.currentShardMap() == nil)
            try await meta.publish(first, replacing: nil)
            await #expect(throws: MetadataError.generationConflict(expected: nil, found: 1)) {
                try await meta.publish(first, replacing: nil)
            }
            let second = try EvenPlacement().shardMap(for: ids, generation: 2)
            await #expect(throws: MetadataError.generationConflict(expected: 1, found: 1)) {
                try await meta.publish(second.withGeneration(1), replacing: 1)
            }
            try await meta.publish(second, replacing: 1)
            #expect(try await meta.currentShardMap() == second)
            #expect(try await meta.shardMap(generation: 1) == first)
        }
    }

    @Test(arguments: StoreBackend.metadataCases)
    func migrationJournalsAreReplacedInPlace(backend: StoreBackend) async throws {
        try await backend.withMetadata { meta in
            try await meta.saveMigration(id: "m1", journal: "{\"phase\":\"copying\"}")
            try await meta.saveMigration(id: "m2", journal: "{}")
            try await meta.saveMigration(id: "m1", journal: "{\"phase\":\"done\"}")
            let all = try await meta.migrations()
            #expect(all.map(\.id) == ["m1", "m2"])
            #expect(all.first?.journal == "{\"phase\":\"done\"}")
        }
    }
}
