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
    /// Customers: 40, or more for a by-hand full-size run, so a customer's rows fit one listing.
    static var customers: Int { max(40, liveRows / 500) }

    /// `{"id","customer_id","n"}`.
    static func body(_ pk: String, customer: Int, n: Int) -> [UInt8] {
        Array("{\"id\":\"\(pk)\",\"customer_id\":\"c\(customer)\",\"n\":\(n)}".utf8)
    }

    /// One writer of `orders`: updates that move its rows between customers, deletes, and a read
    /// of each of its own writes, each acknowledged in `ledger`. It writes only keys
    /// `o(i * writers + writer)`, so its read-back expectation is exact; `stop` is asked every 25
    /// steps.
    static func write(
        router: ShardRouter, ledger: Ledger, writer: Int, writers: Int, rows: Int, steps: Int, stop: @Sendable () async -> Bool
    ) async throws {
        var random = SeededRandom(seed: 7 + UInt64(writer))
        // The writers keep a steady pace (about 100 steps a second each) for the whole migration.
        // Unpaced, four of them outrun PostgreSQL's lookup-protocol apply in a debug build on a
        // loaded 2-core machine (3-4 round trips per re-placed row): the canary then sees the new
        // layout behind by more than the lag allowance and the cutover's drain outlasts its
        // budget, both of which fail the migration safely but are a throughput limit (issue 21),
        // not what this test is about.
        let pause = Duration.milliseconds(10)
        for step in 0..<steps {
            if step % 25 == 0, await stop() { break }
            try await Task.sleep(for: pause)
            let pk = "o\(Int(random.next() % UInt64(rows / writers)) * writers + writer)"
            do {
                if random.next() % 6 == 0 {
                    let receipt = try await router.delete(table: "orders", pk: pk, shardKey: nil)
                    ledger.acknowledge(pk, version: receipt.version, deleted: true)
                } else {
                    let body = Self.body(pk, customer: Int(random.next() % UInt64(Self.customers)), n: step + 1)
                    let receipt = try await router.put(table: "orders", pk: pk, body: body)
                    ledger.acknowledge(pk, version: receipt.version, deleted: false, body: body)
                    let read = try await router.get(table: "orders", pk: pk, shardKey: nil)
                    if read.version < receipt.version { ledger.violation("\(pk): read v\(read.version) after v\(receipt.version)") }
                }
            } catch let error as RouterError where ["not_found", "range_moving", "layout_moving"].contains(error.code) {
                continue
            }
        }
    }

    /// Creates `orders` (keyed and placed by `id`) and loads `rows` rows, acknowledged in `ledger`.
    static func load(_ router: ShardRouter, rows: Int, ledger: Ledger) async throws {
        _ = try await router.createTable(name: "orders", primaryKey: "id", shardKey: "id")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<8 {
                group.addTask {
                    for i in stride(from: lane, to: rows, by: 8) {
                        let body = Self.body("o\(i)", customer: i % Self.customers, n: 0)
                        let receipt = try await router.put(table: "orders", pk: "o\(i)", body: body)
                        ledger.acknowledge(receipt.pk, version: receipt.version, deleted: false, body: body)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Rows of the live test: 2,000 in the suite; `RESHARD_SHARD_KEY_ROWS=100000` runs the issue's
    /// full-size change by hand (minutes, so not in CI), `RESHARD_SHARD_KEY_BACKEND=sqlite` (or
    /// `postgres`) on one backend.
    static var liveRows: Int {
        ProcessInfo.processInfo.environment["RESHARD_SHARD_KEY_ROWS"].flatMap(Int.init).map { min(max($0, 100), 1_000_000) } ?? 2_000
    }

    /// Every acknowledged write and delete of `orders` reads back by primary key.
    static func checkLedger(_ ledger: Ledger, router: ShardRouter, atLeast rows: Int) async throws {
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
    }

    // SQLite in the suite (PostgreSQL's shard-key change runs there in the rollback tests, which
    // switch and bake); `RESHARD_SHARD_KEY_BACKEND=postgres` runs this one on PostgreSQL by hand.
    // Several live cases at once starve the rest of the suite on two cores.
    @Test(
        arguments: ShardBackend.clusterCases.filter {
            $0 == .sqlite || $0.rawValue == ProcessInfo.processInfo.environment["RESHARD_SHARD_KEY_BACKEND"]
        })
    func changesTheShardKeyUnderLoadWithoutLosingAWrite(backend: ShardBackend) async throws {
        // A by-hand full-size run can be limited to one backend.
        if let only = ProcessInfo.processInfo.environment["RESHARD_SHARD_KEY_BACKEND"], only != backend.rawValue { return }
        let fixture = try await RouterFixture.make(shards: 3, backend: backend)
        defer { fixture.remove() }
        let router = fixture.router
        let ledger = Ledger()
        let rows = Self.liveRows
        let loadStart = ContinuousClock.now
        try await Self.load(router, rows: rows, ledger: ledger)
        let loaded = ContinuousClock.now
        let manager = MigrationManager(router: router, metadata: fixture.metadata, logger: Logger(label: "test"))
        let kind = MigrationKind.changeShardKey(TableName("orders")!, field: "customer_id")
        let preview = try await manager.preview(kind)
        #expect(preview.layout?.rows == rows && preview.layout?.unplaceable == 0)
        #expect((preview.layout?.rowsPerShard.values.reduce(0, +) ?? 0) == rows)

        let settings = MigrationSettings(
            chunkRows: 200, maxLagChanges: 20, maxLagMillis: 500, bakeMillis: 500, cleanupChunkRows: 500, latencyFactor: nil,
            tombstoneGraceMillis: 0, canarySteps: [50, 100], canaryStepMillis: 300)
        let (id, _) = try await manager.create(MigrationRequest(kind: kind, settings: settings))
        let migration = try #require(id)
        let done = { @Sendable () async -> Bool in await manager.status(migration)?.machine.phase.isTerminal ?? true }
        // Writers: updates that move rows between customers, deletes, reads of their own writes.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    try await Self.write(
                        router: router, ledger: ledger, writer: writer, writers: 4, rows: rows, steps: max(6_000, rows * 3), stop: done)
                }
            }
            try await group.waitForAll()
        }
        // The writers' steps are bounded; the migration finishes on its own after them.
        for _ in 0..<1_200 where !(await done()) { try await Task.sleep(for: .milliseconds(100)) }
        let status = try #require(await manager.status(migration))
        let final = status.machine
        // The figures of a by-hand full-size run (`liveRows`), in the log.
        let log = final.phaseLog
        let phases = zip(log, log.dropFirst()).map { "\($0.phase.rawValue) \(Double($1.at - min($1.at, $0.at)) / 1_000) s" }
        print(
            "change_shard_key on \(backend): \(rows) rows loaded in \(loaded - loadStart); \(final.phase.rawValue) in "
                + "\(Double((log.last?.at ?? 0) - (log.first?.at ?? 0)) / 1_000) s; \(phases.joined(separator: ", ")); "
                + "writes held \(final.pausesMillis) ms; \(final.cutoverAttempts) cutover attempt(s); \(final.rowsCopied) rows copied")
        #expect(
            final.phase == .done,
            "ended in \(final.phase): \(final.failure ?? "") \(status.error ?? "") \(final.phaseLog.map { "\($0.phase.rawValue)@\($0.at % 100_000)" }) pacing \(String(describing: final.pacing))"
        )
        #expect(final.verification?.passed == true, "\(final.verification?.problems ?? [])")
        // The canary read the new layout by primary key beside the old one, and they agreed.
        let shadow = router.canary.stats
        #expect(shadow.reads > 0 && shadow.mismatches == 0 && !shadow.halted, "\(shadow)")

        // The table is placed by customer_id now, on storage of its own, and the old layout is gone.
        let table = try #require(router.tables.first { $0.name.rawValue == "orders" })
        #expect(table.shardKey == "customer_id" && table.layoutGeneration == 2 && table.lookup != nil)
        for shard in router.shardMap.shards {
            #expect(try await !fixture.openShard(shard.rawValue).tables().contains(TableName("orders")!), "old layout dropped on \(shard)")
        }
        // Every acknowledged write and delete reads back by primary key.
        try await Self.checkLedger(ledger, router: router, atLeast: rows)
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
