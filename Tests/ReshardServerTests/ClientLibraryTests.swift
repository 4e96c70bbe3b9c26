import Foundation
import ReshardAPI
import ReshardClient
import Synchronization
import Testing

/// ReshardClient against a live `reshard serve` while an add_shard migration moves rows: no
/// lost update under If-Match retries, and batches and paginated listings that return every
/// row exactly once.
@Suite(.timeLimit(.minutes(4))) struct ClientLibraryTests {
    static let token = "client-token-1"

    struct Counter: Codable, Sendable, Equatable {
        var n: Int
    }

    /// Shared by the incrementing clients and the test.
    final class Progress: Sendable {
        let done = Atomic<Bool>(false)
        let during = Atomic<Int>(0)
    }

    struct Order: Codable, Sendable, Equatable {
        let customer_id: String
        let amount: Int
    }

    @Test func countersBatchesAndPagesHoldThroughAnAddShard() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-client")
        defer { scratch.close() }
        let (server, port) = try await scratch.startServing(["--shards", "4"])
        let client = try ReshardClient(.init(url: "http://127.0.0.1:\(port)", adminToken: Self.token))
        defer { Task { try? await client.shutdown() } }

        try await client.createTable("counters", primaryKey: "id")
        try await client.createTable("orders", primaryKey: "id", shardKey: "customer_id")
        #expect(try await client.put(Counter(n: 0), table: "counters", pk: "hits", condition: .absent).created)
        // Rows for the migration to move, and the orders the listings must return.
        let orders = (0..<250).map { "o\($0)" }
        for chunk in stride(from: 0, to: orders.count, by: 100) {
            let items = try orders[chunk..<min(chunk + 100, orders.count)].map {
                try BatchWriteItem.put($0, Order(customer_id: "c7", amount: Int($0.dropFirst()) ?? -1), condition: .absent)
            }
            let results = try await client.batchWrite(table: "orders", items)
            #expect(results.allSatisfy { (try? $0.get().created) == true })
        }
        for chunk in 0..<12 {
            let items = try (0..<100).map { try BatchWriteItem.put("f\(chunk)-\($0)", Counter(n: $0)) }
            _ = try await client.batchWrite(table: "counters", items)
        }

        try await client.addShard("s5")
        var request = API.CreateMigration(kind: "add_shard")
        request.shard = "s5"
        request.options = API.MigrationOptions()
        request.options?.chunkRows = 50
        request.options?.maxRowsPerSecond = 2_000
        request.options?.bakeMs = 300
        request.options?.tombstoneGraceMs = 0
        request.options?.canaryStepMs = 50
        // Held before its cutover until two listings and batch reads have run there, so that
        // they meet rows on both owners however loaded the machine is.
        request.options?.gates = ["before_cutover"]
        let migration = try #require(try await client.createMigration(request).id)
        let started = ContinuousClock.now

        let progress = Progress()
        async let increments: [Int] = withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var succeeded = 0
                    for _ in 0..<2_000 where !progress.done.load(ordering: .relaxed) || succeeded < 3 {
                        if try await client.update(
                            Counter.self, table: "counters", pk: "hits", { counter in Counter(n: (counter?.n ?? 0) + 1) })
                            != nil
                        {
                            succeeded += 1
                            if !progress.done.load(ordering: .relaxed) { progress.during.add(1, ordering: .relaxed) }
                        }
                    }
                    return succeeded
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // While rows move: page through the orders (7 a page) and read them back in batches.
        var listings = 0
        var batchReads = 0
        var whileHeld = 0
        var phase = ""
        for _ in 0..<600 {
            var listed: [String] = []
            for try await row in client.listAll(Order.self, table: "orders", shardKey: "c7", pageSize: 7) {
                #expect(row.value.amount == Int(row.pk.dropFirst()))
                listed.append(row.pk)
            }
            #expect(listed == orders.sorted(), "listing \(listings) returned \(listed.count) rows")
            listings += 1
            let read = try await client.batchGet(Order.self, table: "orders", orders.prefix(100).map { ($0, "c7") })
            #expect(read.map { $0?.pk } == orders.prefix(100).map { $0 })
            batchReads += 1
            let status = try await client.migration(migration)
            phase = status.phase
            if status.awaitingApproval != nil {
                whileHeld += 1
                if whileHeld == 2 { _ = try await client.command(.approve, migration: migration) }
            }
            if ["done", "failed", "rolled_back"].contains(phase) { break }
        }
        progress.done.store(true, ordering: .relaxed)
        let counts = try await increments
        #expect(phase == "done", "the migration ended \(phase):\n\(server.logTail)")
        let total = counts.reduce(0, +)
        let final = try #require(try await client.get(Counter.self, table: "counters", pk: "hits"))
        #expect(final.value.n == total, "\(counts)")
        #expect(progress.during.load(ordering: .relaxed) > 0)
        #expect(whileHeld >= 2 && listings == batchReads)
        let cluster = try await client.cluster()
        #expect(cluster.shards.contains { $0.id == "s5" })
        print(
            "client: \(total) increments (\(progress.during.load(ordering: .relaxed)) during the migration of \(ContinuousClock.now - started)), \(listings) listings"
        )
    }
}
