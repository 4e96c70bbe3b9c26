import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// The contract of retiring a table (the switch of a shard-key change), clearing and dropping
/// its storage, on every backend.
@Suite struct RetirementConformanceTests {
    let orders = TableName("orders")!
    let users = TableName("users")!

    func write(_ table: TableName, _ pk: String, body: String? = "{}") -> ClientWrite {
        ClientWrite(table: table, pk: pk, shardKey: pk, body: body, proposedVersion: 1, generation: 1)
    }

    @Test(arguments: ShardBackend.available)
    func aRetiredTableRefusesClientWritesAndSaysSoToReaders(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            for table in [orders, users] { try await store.ensureTable(table) }
            _ = try await store.write(write(orders, "o1"))
            let before = try await store.changePosition()
            let position = try await store.retire([orders], layout: 2)
            #expect(position >= before)
            #expect(try await store.retired() == [orders: 2])
            for attempt in [write(orders, "o1", body: #"{"v":2}"#), write(orders, "o1", body: nil), write(orders, "o2")] {
                do {
                    _ = try await store.write(attempt)
                    Issue.record("a write to a retired table went through")
                } catch let error as StoreError {
                    #expect(error.retiredLayout == 2)
                }
            }
            let second = StoredRow(table: orders, pk: "o3", shardKey: "o3", version: 9, body: "{}")
            await #expect(throws: StoreError.retired(orders, layout: 2)) { try await store.writeSecond(second, routedBy: 1) }
            await #expect(throws: StoreError.retired(orders, layout: 2)) { try await store.place(Placement(row: second, generation: 1)) }
            // The migrator still writes (reverse replication keeps a retired layout current).
            #expect(try await store.place(Placement(row: second, generation: nil)) == .written(version: 9))
            #expect(try await store.apply([StoredRow(table: orders, pk: "o4", shardKey: "o4", version: 3, body: "{}")]) == 1)
            // Reads answer, and say the table is retired.
            let read = try await store.read(table: orders, pk: "o1", shardKey: "o1")
            #expect(read.value?.body == "{}" && read.retired == 2)
            #expect(try await store.rows(table: orders, shardKey: "o1", after: nil, limit: 10).retired == 2)
            // Other tables are untouched.
            #expect(try await store.write(write(users, "u1")) == .created(version: 1))
            #expect(try await store.read(table: users, pk: "u1", shardKey: "u1").retired == nil)
            // A later retirement never lowers the layout; unretiring restores writes.
            try await store.retire([orders], layout: 1)
            #expect(try await store.retired() == [orders: 2])
            try await store.unretire([orders])
            #expect(try await store.retired().isEmpty)
            #expect(try await store.write(write(orders, "o2")) == .created(version: 1))
        }
    }

    @Test(arguments: ShardBackend.available)
    func aRetirementWaitsForWritesInFlightAndCoversThem(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(orders)
            let stream = try #require(ChangeStreamID("retire_race"))
            let start = try await store.openChangeStream(stream)
            // Writers race the retirement: each write either lands at or before the position it
            // returns, or is refused. None lands after it.
            let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var done: [String] = []
                        for n in 0..<40 {
                            let pk = "w\(writer)-\(n)"
                            do {
                                _ = try await store.write(write(orders, pk))
                                done.append(pk)
                            } catch let error as StoreError where error.retiredLayout != nil {
                                break
                            }
                        }
                        return done
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(5))
                    let position = try await store.retire([orders], layout: 2)
                    return ["@\(position)"]
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            let position = try #require(acknowledged.first { $0.hasPrefix("@") }.flatMap { UInt64($0.dropFirst()) })
            var delivered: Set<String> = []
            var cursor = start
            while true {
                let batch = try await store.changes(stream, after: cursor, through: position, limit: 1_000)
                delivered.formUnion(batch.changes.map(\.row.pk))
                if batch.position >= position || batch.position == cursor { break }
                cursor = batch.position
            }
            var written: Set<String> = []
            for entry in acknowledged where !entry.hasPrefix("@") { written.insert(entry) }
            let missing = written.subtracting(delivered)
            #expect(
                missing.isEmpty,
                "every write the retirement let through is at or before its position: \(written.count) written, missing \(missing.sorted().prefix(5))"
            )
            try await store.closeChangeStream(stream)
        }
    }

    @Test(arguments: ShardBackend.available)
    func aLayoutIsClearedInChunksThenDropped(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            for table in [orders, users] { try await store.ensureTable(table) }
            for n in 0..<25 { _ = try await store.write(write(orders, "o\(n)")) }
            _ = try await store.write(write(users, "u1"))
            try await store.retire([orders], layout: 2)
            #expect(try await store.clearTable(orders, limit: 10) == 10)
            #expect(try await store.clearTable(orders, limit: 10) == 10)
            #expect(try await store.clearTable(orders, limit: 10) == 5)
            #expect(try await store.clearTable(orders, limit: 10) == 0)
            #expect(try await store.get(table: users, pk: "u1") != nil, "other tables keep their rows")
            try await store.dropTable(orders)
            #expect(try await store.tables() == [users])
            #expect(try await store.retired().isEmpty)
            try await store.dropTable(orders)
            #expect(try await store.clearTable(orders, limit: 10) == 0, "a dropped table clears as empty")
            // The name can be used again.
            try await store.ensureTable(orders)
            #expect(try await store.write(write(orders, "o1")) == .created(version: 1))
        }
    }
}
