import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

@testable import ReshardEngine

/// `dual_write`'s second writes through a real router over the memory stores (whose faults make
/// the new owner unreachable on demand; the stores and metadata logs pass the same conformance
/// suites as SQLite and PostgreSQL): the router writes the new owner at the old owner's version,
/// queues a second write the new owner refuses, and the migrator's retries carry the queue to the
/// new owner, oldest first, dropping what a rollback fenced.
@Suite struct SecondWriteQueueTests {
    @Test func failedSecondWritesAreQueuedAndRetriedInOrder() async throws {
        let ids = (1...4).map { ShardID("s\($0)")! }
        let s4 = ids[3]
        let down = Mutex(true)
        let faults: MemoryShardStore.Faults = { shard, operation in
            if shard == s4, operation == .apply, down.withLock({ $0 }) { throw StoreError.backend("s4 is unreachable") }
        }
        let stores = Dictionary(uniqueKeysWithValues: ids.map { ($0, MemoryShardStore(shardID: $0, faults: faults)) })
        let current = try RingPlacement().shardMap(for: Array(ids.prefix(3)), generation: 1)
        let made = try await MemoryRouter.make(stores, map: current)
        let (router, metadata) = (made.router, made.metadata)
        _ = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        let plan = try MigrationPlanner.plan(.addShard(s4), current: current, registered: Set(ids))
        let moving = (0..<400).map { "k\($0)" }.filter { plan.move(containing: KeyHash.of($0)) != nil }.prefix(30)
        #expect(moving.count == 30)
        let directive = RouteDirective(
            migration: "m_queue", epoch: 0, plan: plan, routes: .dualWrites, shadowPercent: 0, lagAllowanceMillis: 0)
        try await RouterFleet(router: router, metadata: metadata).publishDirective { $0.routes = directive }
        try await metadata.openLogs(of: ChangeStreamID(migration: "m_queue"))

        // The new owner is down: every second write fails and is queued; the clients' writes all
        // succeed on the old owners.
        var receipts: [String: WriteReceipt] = [:]
        for pk in moving { receipts[pk] = try await router.put(table: "kv", pk: pk, body: Array("{\"n\":1}".utf8)) }
        let deleted = try #require(moving.first)
        receipts[deleted] = try await router.delete(table: "kv", pk: deleted, shardKey: nil)
        let stats = router.secondWrites.stats
        #expect(stats.attempts == 31 && stats.queued == 31 && stats.written == 0 && stats.active, "\(stats)")
        // The status sums every router: this one as it stands, the others as their reports say;
        // another migration's report, and one that is not a report, count for nothing.
        var other = SecondWrites.Stats(migration: "m_queue")
        (other.attempts, other.written, other.queued) = (7, 5, 2)
        let encoder = JSONEncoder()
        for (name, stats) in [("r-other", other), ("r-older", SecondWrites.Stats(migration: "m_old"))] {
            let body = RouterReportBody(shadow: ShadowReads.Stats(), secondWrites: stats)
            try await metadata.saveReport(router: name, report: String(decoding: try encoder.encode(body), as: UTF8.self))
        }
        try await metadata.saveReport(router: "r-garbage", report: "not json")
        let fleetWide = try await RouterFleet(router: router, metadata: metadata).secondWrites(migration: "m_queue")
        #expect(fleetWide.attempts == 38 && fleetWide.written == 5 && fleetWide.queued == 33 && fleetWide.active, "\(fleetWide)")
        let log = MigrationLogID(migration: ChangeStreamID(migration: "m_queue"), kind: .retry)
        #expect(try await metadata.logStatus(log) == LogStatus(entries: 31, last: 31))

        // A pass that meets the same failure retries nothing and reports what waits.
        let queue = SecondWriteQueue(log: log, metadata: metadata, stores: router)
        guard case .secondWritesRetried(0, 31, .some) = await queue.retry(limit: 500) else {
            Issue.record("a failing pass should apply nothing and keep all 31")
            return
        }
        // Once the new owner is back, one pass of 20 and one of the rest carry every write, the
        // delete after its put: the new owner ends with the old owners' versions.
        down.withLock { $0 = false }
        let target = try #require(stores[s4])
        #expect(await queue.retry(limit: 20) == .secondWritesRetried(applied: 20, waiting: 11, error: nil))
        #expect(await queue.retry(limit: 500) == .secondWritesRetried(applied: 11, waiting: 0, error: nil))
        for (pk, receipt) in receipts {
            let row = target.row(table: TableName("kv")!, pk: pk)
            #expect(row?.version == receipt.version, "\(pk)")
            #expect(row?.isDeleted == (pk == deleted), "\(pk)")
        }
        #expect(try await metadata.logStatus(log) == LogStatus(entries: 0, last: 31))

        // With the copies fenced (a rollback), queued writes are obsolete: dropped, not retried.
        let late = try #require(moving.last)
        _ = try await target.fence(plan.moves.map(\.range), generation: plan.target.generation)
        let entry = try LoggedWrite(
            StoredRow(table: TableName("kv")!, pk: late, shardKey: late, version: .max / 2, body: "{}"), target: s4,
            generation: plan.source.generation
        ).encoded()
        _ = try await metadata.appendToLog(log, [entry], limit: 10)
        #expect(await queue.retry(limit: 500) == .secondWritesRetried(applied: 1, waiting: 0, error: nil))
        #expect(target.row(table: TableName("kv")!, pk: late)?.version == receipts[late]?.version)

        // An entry that is not a queued write (edited by hand) is skipped, and the queue moves on.
        _ = try await metadata.appendToLog(log, ["{\"target\":\"s4\"}", "not json"], limit: 10)
        #expect(await queue.retry(limit: 500) == .secondWritesRetried(applied: 2, waiting: 0, error: nil))
    }

    @Test func aQueuedWriteRoundTripsAndForeignEntriesAreRefused() throws {
        let row = StoredRow(table: TableName("t")!, pk: "ü \"quoted\" \\", shardKey: "k", version: .max, body: nil)
        let text = try LoggedWrite(row, target: ShardID("s2")!, generation: 7).encoded()
        let decoded = try #require(LoggedWrite.decode(text))
        #expect(decoded.row == row && decoded.target == ShardID("s2") && decoded.generation == 7)
        for bad in [
            "", "[]", "{}", #"{"target":"s2","table":"T!","pk":"a","shard_key":"a","version":1,"generation":1}"#,
            #"{"target":"s2","table":"t","pk":"","shard_key":"a","version":1,"generation":1}"#,
            #"{"target":"s2","table":"t","pk":"a","shard_key":"a","version":-1,"generation":1}"#,
        ] {
            #expect(LoggedWrite.decode(bad) == nil, "\(bad)")
        }
    }
}
