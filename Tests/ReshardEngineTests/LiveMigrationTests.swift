import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

/// Each kind of migration on real SQLite shards while writers and readers keep going: no
/// acknowledged write lost, no delete resurrected, no read older than the reader's own write,
/// and every row on exactly the shard the final map names.
@Suite(.serialized) struct LiveMigrationTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case addShard, removeShard, rebalance, moveRange
        var testDescription: String { rawValue }
    }

    /// Every kind on each backend; on the trigger-fed one, whose clusters mix logical decoding
    /// and triggers side by side, the add and the remove, which between them move data both ways
    /// across the two captures.
    static let cases: [(Kind, ShardBackend)] = ShardBackend.clusterCases.flatMap { backend in
        (backend == .postgresTriggers ? [Kind.addShard, .removeShard] : Kind.allCases).map { ($0, backend) }
    }

    @Test(arguments: cases)
    func migratesUnderLoadWithoutLosingAWrite(kind: Kind, backend: ShardBackend) async throws {
        try await migrateUnderLoad(kind: kind, backend: backend, strategy: .cdcBackfill)
    }

    /// Every other available strategy, adding a shard (the kind that moves data from every old
    /// owner) on each backend.
    static let strategies: [(MigrationStrategy, ShardBackend)] = MigrationStrategy.allCases.filter { $0.isAvailable && $0 != .cdcBackfill }
        .flatMap { strategy in ShardBackend.clusterCases.filter { $0 != .postgresTriggers }.map { (strategy, $0) } }

    @Test(arguments: strategies)
    func eachStrategyMigratesUnderLoadWithoutLosingAWrite(strategy: MigrationStrategy, backend: ShardBackend) async throws {
        try await migrateUnderLoad(kind: .addShard, backend: backend, strategy: strategy)
    }

    /// One client reads, lists, rewrites and deletes cold rows `c0…` until `done`, each answer
    /// checked exactly against what it did (no other client touches them): a row not yet copied
    /// must be read, listed, rewritten and deleted as if it were, and a deleted one stay deleted.
    static func useColdRows(_ count: Int, router: ShardRouter, until done: () async -> Bool) async throws {
        guard count > 0 else { return }
        var random = SeededRandom(seed: 7)
        var bodies = (0..<count).map { Optional("{\"c\":\($0)}") }
        func check(_ i: Int) async throws {
            do {
                let read = try await router.get(table: "kv", pk: "c\(i)", shardKey: nil)
                if read.body != bodies[i] { Issue.record("c\(i) read \(read.body), expected \(bodies[i] ?? "not found")") }
            } catch let error as RouterError where error.code == "not_found" {
                if let body = bodies[i] { Issue.record("c\(i) not found, expected \(body)") }
            }
        }
        for _ in 0..<100_000 {
            if await done() { break }
            let i = Int(random.next() % UInt64(count))
            let pk = "c\(i)"
            switch random.next() % 16 {
            case 0:
                bodies[i] = "{\"c\":\(i),\"w\":\(random.next() % 100)}"
                _ = try await router.put(table: "kv", pk: pk, body: Array((bodies[i] ?? "").utf8))
            case 1 where bodies[i] != nil:
                _ = try await router.delete(table: "kv", pk: pk, shardKey: nil)
                bodies[i] = nil
            case 2:
                let listed = try await router.list(table: "kv", shardKey: pk, limit: 10).map(\.body)
                if listed != (bodies[i].map { [$0] } ?? []) {
                    Issue.record("listing \(pk) gave \(listed), expected \(bodies[i] ?? "nothing")")
                }
            default:
                try await check(i)
            }
        }
        // After the migration, from the final map's owners alone.
        for i in 0..<count { try await check(i) }
    }

    /// Two clients increment counters `n0…n15` by read, then write with If-Match, until `done`:
    /// how many increments of each counter were acknowledged. Whatever phase, strategy or
    /// backend carried a write, the counter must end at exactly that many (no lost update).
    static func countWithConditions(router: ShardRouter, until done: @escaping @Sendable () async -> Bool) async throws -> [String: Int] {
        try await withThrowingTaskGroup(of: [String: Int].self) { group in
            for client in 0..<2 {
                group.addTask {
                    var random = SeededRandom(seed: 11 + UInt64(client))
                    var acknowledged: [String: Int] = [:]
                    for step in 0..<20_000 {
                        if step % 10 == 0, await done() { break }
                        let pk = "n\(random.next() % 16)"
                        do {
                            let read = try await router.get(table: "kv", pk: pk, shardKey: nil)
                            let n = Int(read.body.dropFirst(5).dropLast()) ?? -1_000_000
                            _ = try await router.put(
                                table: "kv", pk: pk, body: Array("{\"n\":\(n + 1)}".utf8), condition: .version(read.version))
                            acknowledged[pk, default: 0] += 1
                        } catch let error as RouterError where error == .preconditionFailed || error.code == "range_moving" {
                            continue  // another client got there first, or a bounded 503: not written
                        }
                    }
                    return acknowledged
                }
            }
            return try await group.reduce(into: [:]) { total, part in total.merge(part, uniquingKeysWith: +) }
        }
    }

    func migrateUnderLoad(kind: Kind, backend: ShardBackend, strategy: MigrationStrategy) async throws {
        let fixture = try await RouterFixture.make(shards: 3, backend: backend)
        defer { fixture.remove() }
        let router = fixture.router
        _ = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        for i in 0..<1_500 { _ = try await router.put(table: "kv", pk: "k\(i)", body: Array("{\"v\":0}".utf8)) }
        for i in 0..<16 { _ = try await router.put(table: "kv", pk: "n\(i)", body: Array("{\"n\":0}".utf8), condition: .absent) }
        try await fixture.addShard("s4")
        if backend == .postgresTriggers {
            var captures: Set<String> = []
            for shard in ["s1", "s2", "s3", "s4"] { captures.insert(try await fixture.openShard(shard).changeCapture()) }
            #expect(captures.count == 2 && captures.contains { $0.hasPrefix("triggers (wal_level is replica") }, "\(captures)")
        }

        let migrationKind: MigrationKind
        switch kind {
        case .addShard: migrationKind = .addShard(ShardID("s4")!)
        case .removeShard: migrationKind = .removeShard(ShardID("s2")!)
        case .rebalance: migrationKind = .rebalance
        case .moveRange: migrationKind = .moveRange(HashRange(start: 1 << 62, last: 1 << 63), to: ShardID("s4")!)
        }
        var hashes: [UInt64] = []
        for shard in router.shardMap.shards {
            hashes += try await fixture.openShard(shard.rawValue).scan(table: TableName("kv")!, range: .full, after: nil, limit: 10_000)
                .map(\.hash)
        }
        let registered = Set((try await fixture.metadata.shards()).map(\.id))
        let plan = try MigrationPlanner.plan(migrationKind, current: router.shardMap, registered: registered, rowHashes: hashes)
        // The latency signal is tested in ThrottleTests; here four busy writers on two cores would
        // (rightly) slow the copy to a crawl.
        var settings = MigrationSettings(
            chunkRows: 100, maxLagChanges: 20, maxLagMillis: 500, bakeMillis: 300, cleanupChunkRows: 200,
            // A strategy that switches first serves clients while it copies: paced, the copy lasts
            // long enough for writers and readers to meet rows not yet copied.
            copyParallelism: strategy.switchesFirst ? 1 : 8, maxRowsPerSecond: strategy.switchesFirst ? 200 : nil, latencyFactor: nil,
            tombstoneGraceMillis: 0, canarySteps: [50, 100], canaryStepMillis: 150, strategy: strategy)
        if strategy.servesReadsGradually {
            // Reads move in two steps; the latency threshold is wide, as two loaded cores make a
            // p99 jump (ServedReadsTests judges the thresholds).
            settings.readSteps = [50, 100]
            settings.readStepMillis = 300
            settings.maxReadLatencyFactor = 10
        }
        let machine = MigrationStateMachine(id: "m-\(kind)", plan: plan, tables: [TableName("kv")!], settings: settings)
        let runner = MigrationRunner(machine: machine, router: router, metadata: fixture.metadata, logger: Logger(label: "test"))

        // Cold rows, written before the migration and touched only by one client during it: while
        // a strategy that switches first copies, most are only on their old owners.
        let cold = strategy.switchesFirst ? 1_500 : 0
        for i in 0..<cold { _ = try await router.put(table: "kv", pk: "c\(i)", body: Array("{\"c\":\(i)}".utf8)) }

        let ledger = Ledger()
        let migration = Task { await runner.run() }
        #expect(await runner.command(.start) == .accepted)
        let coldClient = Task { try await Self.useColdRows(cold, router: router, until: { await runner.state.phase.isTerminal }) }
        let counters = Task { try await Self.countWithConditions(router: router, until: { await runner.state.phase.isTerminal }) }
        // Writers write, delete and read back their own keys until the migration ends (bounded).
        try await MigrationLoad.write(
            router: router, ledger: ledger, writers: 4, keys: 1_800, seed: 1, steps: 20_000, checkEvery: 50,
            stop: { await runner.state.phase.isTerminal })
        _ = await migration.value
        try await coldClient.value
        let increments = try await counters.value
        for i in 0..<16 {
            let body = try await router.get(table: "kv", pk: "n\(i)", shardKey: nil).body
            #expect(
                body == "{\"n\":\(increments["n\(i)", default: 0])}",
                "n\(i): \(body) after \(increments["n\(i)", default: 0]) acknowledged increments")
        }
        #expect(increments.values.reduce(0, +) > 0)
        let final = await runner.state
        #expect(final.phase == .done, "ended in \(final.phase): \(final.failure ?? "")")
        try await MigrationLoad.checkLedger(ledger, router: router)
        // Every row sits on exactly the shard the final map names.
        #expect(router.shardMap == plan.target)
        var total = 0
        for shard in try await fixture.metadata.shards() {
            let rows = try await fixture.openShard(shard.id.rawValue).scan(
                table: TableName("kv")!, range: .full, after: nil, limit: 100_000)
            total += rows.count
            for row in rows where plan.target.owner(of: row.hash) != shard.id {
                Issue.record("\(row.pk) is on \(shard.id) but the map gives it to \(plan.target.owner(of: row.hash))")
            }
        }
        #expect(total > 0)
        // Cleanup purged the tombstones older than its start; the reads above still found the deletes.
        #expect(final.purges.reduce(0) { $0 + $1.rows } > 0)
        #expect((await runner.writePauses).count >= 1)
        let phases = final.phaseLog.map(\.phase)
        #expect(strategy.steps.map(\.phase).allSatisfy(phases.contains), "every phase of \(strategy) ran: \(phases)")
        if strategy.writesSecond {
            let second = router.secondWrites.stats
            #expect(second.written > 0 && second.migration == machine.id, "writers' second writes reached the new owner: \(second)")
        }
        if strategy.switchesFirst {
            // Writers' keys not yet copied were copied first, and reads found the old owners.
            let second = router.secondWrites.stats
            #expect(second.copied > 0 && second.oldOwnerReads > 0 && second.migration == machine.id, "\(second)")
        }
        if strategy.servesReadsGradually {
            let served = router.served.stats
            #expect(served.served > 0 && served.errors == 0 && served.sentBack == nil && served.migration == machine.id, "\(served)")
        }
        if strategy.records {
            let recorded = router.secondWrites.stats.recorded
            #expect(
                recorded > 0 && (final.replayed?.applied ?? 0) > 0, "writes recorded \(recorded), replayed \(final.replayed?.applied ?? 0)")
        }
    }
}
