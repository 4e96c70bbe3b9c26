import Foundation
import Logging
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

@testable import ReshardEngine

/// A shard-key change under load on real shards: `orders` keyed and placed by `id`, placed by
/// `customer_id` afterwards, while writers update rows (their customer too) and delete them.
@Suite struct ChangeShardKeyTests {
    static let customers = 40

    /// `{"id","customer_id","n"}`.
    static func body(_ pk: String, customer: Int, n: Int) -> [UInt8] {
        Array("{\"id\":\"\(pk)\",\"customer_id\":\"c\(customer)\",\"n\":\(n)}".utf8)
    }

    @Test(arguments: ShardBackend.clusterCases)
    func changesTheShardKeyUnderLoadWithoutLosingAWrite(backend: ShardBackend) async throws {
        let fixture = try await RouterFixture.make(shards: 3, backend: backend)
        defer { fixture.remove() }
        let router = fixture.router
        _ = try await router.createTable(name: "orders", primaryKey: "id", shardKey: "id")
        let ledger = Ledger()
        let rows = 2_000
        for i in 0..<rows {
            let body = Self.body("o\(i)", customer: i % Self.customers, n: 0)
            let receipt = try await router.put(table: "orders", pk: "o\(i)", body: body)
            ledger.acknowledge(receipt.pk, version: receipt.version, deleted: false, body: body)
        }
        let manager = MigrationManager(router: router, metadata: fixture.metadata, logger: Logger(label: "test"))
        let kind = MigrationKind.changeShardKey(TableName("orders")!, field: "customer_id")
        let preview = try await manager.preview(kind)
        #expect(preview.layout?.rows == rows && preview.layout?.unplaceable == 0)
        #expect((preview.layout?.rowsPerShard.values.reduce(0, +) ?? 0) == rows)

        let settings = MigrationSettings(
            chunkRows: 200, maxLagChanges: 20, maxLagMillis: 500, bakeMillis: 500, cleanupChunkRows: 500, latencyFactor: nil,
            tombstoneGraceMillis: 0, canarySteps: [])
        let (id, _) = try await manager.create(MigrationRequest(kind: kind, settings: settings))
        let migration = try #require(id)
        let done = { @Sendable () async -> Bool in await manager.status(migration)?.machine.phase.isTerminal ?? true }
        // Writers: updates that move rows between customers, deletes, reads of their own writes.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    var random = SeededRandom(seed: 7 + UInt64(writer))
                    for step in 0..<6_000 {
                        if step % 25 == 0, await done() { break }
                        // Each writer its own keys, so its read-back expectation is exact.
                        let pk = "o\(Int(random.next() % UInt64(rows / 4)) * 4 + writer)"
                        do {
                            if random.next() % 6 == 0 {
                                let receipt = try await router.delete(table: "orders", pk: pk, shardKey: nil)
                                ledger.acknowledge(pk, version: receipt.version, deleted: true)
                            } else {
                                let body = Self.body(pk, customer: Int(random.next() % UInt64(Self.customers)), n: step + 1)
                                let receipt = try await router.put(table: "orders", pk: pk, body: body)
                                ledger.acknowledge(pk, version: receipt.version, deleted: false, body: body)
                                let read = try await router.get(table: "orders", pk: pk, shardKey: nil)
                                if read.version < receipt.version {
                                    ledger.violation("\(pk): read v\(read.version) after v\(receipt.version)")
                                }
                            }
                        } catch let error as RouterError where ["not_found", "range_moving", "layout_moving"].contains(error.code) {
                            continue
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // The writers' steps are bounded; the migration finishes on its own after them.
        for _ in 0..<1_200 where !(await done()) { try await Task.sleep(for: .milliseconds(100)) }
        let status = try #require(await manager.status(migration))
        let final = status.machine
        #expect(
            final.phase == .done,
            "ended in \(final.phase): \(final.failure ?? "") \(status.error ?? "") \(final.phaseLog.map { "\($0.phase.rawValue)@\($0.at % 100_000)" }) pacing \(String(describing: final.pacing))"
        )
        #expect(final.verification?.passed == true, "\(final.verification?.problems ?? [])")

        // The table is placed by customer_id now, on storage of its own, and the old layout is gone.
        let table = try #require(router.tables.first { $0.name.rawValue == "orders" })
        #expect(table.shardKey == "customer_id" && table.layoutGeneration == 2 && table.lookup != nil)
        for shard in router.shardMap.shards {
            #expect(try await !fixture.openShard(shard.rawValue).tables().contains(TableName("orders")!), "old layout dropped on \(shard)")
        }
        // Every acknowledged write and delete reads back by primary key.
        #expect(ledger.violations.isEmpty, "\(ledger.violations.prefix(5))")
        let report = try await ledger.check { pk in
            do {
                let row = try await router.get(table: "orders", pk: pk, shardKey: nil)
                return Ledger.Read(version: row.version, body: Array(row.body.utf8))
            } catch let error as RouterError where error.code == "not_found" {
                return nil
            }
        }
        #expect(report.checked >= rows && report.isClean, "\(report)")
        // Every live row lives on the shard its customer names, and a customer's listing is
        // exactly its rows.
        var byCustomer: [String: Set<String>] = [:]
        for shard in router.shardMap.shards {
            let stored = try await fixture.openShard(shard.rawValue).scan(table: table.storage, range: .full, after: nil, limit: 1_000_000)
            for row in stored where !row.isDeleted {
                #expect(router.shardMap.owner(of: KeyHash.of(row.shardKey)) == shard, "\(row.pk) is on \(shard)")
                let pk = try #require(LookupEntry.unslot(row.pk)).pk
                byCustomer[row.shardKey, default: []].insert(pk)
                let read = try await router.get(table: "orders", pk: pk, shardKey: nil)
                #expect(read.body.contains("\"customer_id\":\"\(row.shardKey)\""), "\(pk) reads under its customer")
            }
        }
        for customer in 0..<Self.customers {
            let listed = try await router.list(table: "orders", shardKey: "c\(customer)", limit: 1_000).map(\.pk)
            #expect(Set(listed) == byCustomer["c\(customer)"] ?? [], "c\(customer) lists exactly its rows")
            #expect(listed.count == Set(listed).count)
        }
    }
}
