import Foundation
import Logging
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

@testable import ReshardEngine

/// A shard-key change rolled back from every point before cleanup while writers move rows
/// between customers and delete them: nothing acknowledged is lost or comes back, the table is
/// placed by its primary key again on its old layout (republished one generation on when the
/// switch had happened: reverse replication kept it current), the new layout is emptied, and the
/// table takes writes again.
@Suite(.serialized) struct ChangeShardKeyRollbackTests {
    typealias Point = RollbackTests.Point

    static let points: [Point] = [.copying, .catchingUp, .verifying, .writesHeld, .sourcesFenced, .switchedAndHeld, .baking, .paused]

    @Test(arguments: points)
    func rollsBackAShardKeyChangeWithoutLosingAWrite(point: Point) async throws {
        try await rollBack(at: point, backend: .sqlite)
    }

    /// On PostgreSQL the points where its retirement and changelog matter (before the fence,
    /// fenced, baking); every point is run on SQLite, and the suite stays lean.
    @Test(arguments: [Point.copying, .sourcesFenced, .baking])
    func rollsBackAShardKeyChangeOnPostgreSQL(point: Point) async throws {
        guard ShardBackend.postgres.isAvailable else { return }
        try await rollBack(at: point, backend: .postgres)
    }

    func rollBack(at point: Point, backend: ShardBackend) async throws {
        let fixture = try await RouterFixture.make(shards: 3, backend: backend)
        defer { fixture.remove() }
        let router = fixture.router
        let ledger = Ledger()
        let rows = 600
        try await ChangeShardKeyTests.load(router, rows: rows, ledger: ledger)
        let table = try #require(router.tables.first { $0.name.rawValue == "orders" })
        let plan = try MigrationPlanner.changeShardKey(table, field: "customer_id", current: router.shardMap)
        let relayout = try #require(plan.relayout)
        let settings = MigrationSettings(
            chunkRows: 40, maxLagChanges: 20, maxLagMillis: 500, bakeMillis: 1_000, cleanupChunkRows: 200, latencyFactor: nil,
            tombstoneGraceMillis: 0, canarySteps: [])
        let machine = MigrationStateMachine(id: "m-relayout-\(point)", plan: plan, tables: [table.storage], settings: settings)
        let trigger = RollbackTests.Trigger(point: point, fixture: fixture)
        let runner = MigrationRunner(
            machine: machine, router: router, metadata: fixture.metadata, logger: Logger(label: "test"),
            hook: { await trigger.onRound($0) })

        let control = RollbackTests.WriterControl()
        let migration = Task { await runner.run() }
        #expect(await runner.command(.start) == .accepted)
        let writers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<3 {
                    group.addTask {
                        try await ChangeShardKeyTests.write(
                            router: router, ledger: ledger, writer: writer, writers: 3, rows: rows, steps: 50_000, stop: { control.isSet })
                    }
                }
                try await group.waitForAll()
            }
        }
        if point == .paused {
            for _ in 0..<1_500 where await runner.state.phase != .paused { try await Task.sleep(for: .milliseconds(20)) }
            #expect(await runner.state.phase == .paused)
            try await Task.sleep(for: .milliseconds(300))
            #expect(await runner.command(.rollback) == .accepted)
        }
        let ended = await RollbackTests.waitForEnd(runner)
        control.set()
        let written = await writers.result
        if !ended { migration.cancel() }
        _ = await migration.value
        try written.get()

        let fired = try #require(trigger.firedState, "the rollback point \(point) was never reached")
        let final = await runner.state
        #expect(final.phase == .rolledBack, "ended in \(final.phase): \(final.failure ?? "")")
        #expect(fired.switched == [.switchedAndHeld, .baking].contains(point))
        try await ChangeShardKeyTests.checkLedger(ledger, router: router, atLeast: rows)

        // Placed by its primary key again, on the old layout's storage, republished one generation on after a switch.
        let after = try #require(router.tables.first { $0.name.rawValue == "orders" })
        #expect(after.shardKey == "id" && after.lookup == nil && after.storage == table.storage)
        #expect(after.layoutGeneration == (fired.switched ? relayout.to.layoutGeneration + 1 : table.layoutGeneration))
        #expect(try await fixture.metadata.tables().first { $0.name == after.name } == after)
        for shard in router.shardMap.shards {
            let store = try fixture.openShard(shard.rawValue)
            // The old layout takes writes: nothing keeps it retired.
            #expect(try await store.retired()[table.storage] == nil, "orders still retired on \(shard)")
            let stored = try await store.scan(table: table.storage, range: .full, after: nil, limit: 100_000)
            let misplaced = stored.filter { router.shardMap.owner(of: $0.hash) != shard || $0.shardKey != $0.pk }.map(\.pk)
            #expect(misplaced.isEmpty, "\(misplaced.count) rows of orders on \(shard) belong elsewhere: \(misplaced.prefix(5))")
            // The new layout holds nothing live.
            for storage in relayout.to.storages where try await store.tables().contains(storage) {
                let left = try await store.scan(table: storage, range: .full, after: nil, limit: 100_000).filter { !$0.isDeleted }
                #expect(left.isEmpty, "\(left.count) live rows of \(storage) left on \(shard)")
            }
        }
        // And takes writes by primary key again.
        for index in 0..<20 {
            let body = ChangeShardKeyTests.body("after\(index)", customer: index, n: 1)
            let receipt = try await router.put(table: "orders", pk: "after\(index)", body: body)
            #expect(try await router.get(table: "orders", pk: "after\(index)", shardKey: nil).version == receipt.version)
        }
    }
}
