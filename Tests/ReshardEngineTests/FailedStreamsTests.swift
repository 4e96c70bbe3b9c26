import Foundation
import Logging
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

/// A migration that fails before the switch gives its change streams back once its retention
/// passes (a PostgreSQL slot pins WAL for as long as it exists), and a resume after that starts
/// capture and copy again, so writes made while nothing captured them still reach the new owner.
@Suite struct FailedStreamsTests {
    @Test(arguments: ShardBackend.clusterCases)
    func aFailedMigrationClosesItsStreamsAndAResumeCopiesAgain(backend: ShardBackend) async throws {
        let fixture = try await RouterFixture.make(shards: 3, backend: backend)
        defer { fixture.remove() }
        let router = fixture.router
        let ledger = Ledger()
        let plan = try await MigrationLoad.prepareAddShard(fixture, ledger: ledger)
        let settings = MigrationSettings(
            chunkRows: 100, bakeMillis: 100, latencyFactor: nil, tombstoneGraceMillis: 0, canarySteps: [], failedStreamRetentionMillis: 0)
        let machine = MigrationStateMachine(id: "m-failed-streams", plan: plan, tables: [TableName("kv")!], settings: settings)
        let injected = Mutex(false)
        let runner = MigrationRunner(
            machine: machine, router: router, metadata: fixture.metadata, logger: Logger(label: "test"),
            hook: { machine in
                // Once, part-way through the copy.
                guard machine.phase == .copying, machine.rowsCopied > 0 else { return [] }
                return injected.withLock { done in
                    defer { done = true }
                    return done ? [] : [.failed(reason: "injected failure")]
                }
            })
        let migration = Task { await runner.run() }
        defer { migration.cancel() }
        #expect(await runner.command(.start) == .accepted)
        for _ in 0..<1_500 where await runner.state.streamsReleased != true { try await Task.sleep(for: .milliseconds(20)) }
        let failed = await runner.state
        try #require(failed.phase == .failed && failed.streamsReleased == true, "\(failed.phase) \(failed.failure ?? "")")
        #expect(failed.failure == "injected failure")
        for shard in Set(plan.sources + plan.targets) {
            #expect(try await fixture.openShard(shard.rawValue).changeStreams().isEmpty, "\(shard) still has a stream")
        }

        // Written while no stream captures anything: only a fresh copy carries these.
        for i in 0..<1_000 where i % 3 == 0 {
            let pk = "k\(i)"
            if i % 2 == 0 {
                let body = Array("{\"v\":1}".utf8)
                let receipt = try await router.put(table: "kv", pk: pk, body: body)
                ledger.acknowledge(pk, version: receipt.version, deleted: false, body: body)
            } else {
                let receipt = try await router.delete(table: "kv", pk: pk, shardKey: nil)
                ledger.acknowledge(pk, version: receipt.version, deleted: true)
            }
        }
        #expect(await runner.command(.resume) == .accepted)
        #expect(await RollbackTests.waitForEnd(runner))
        _ = await migration.value
        let done = await runner.state
        #expect(done.phase == .done)
        // The new owners were complete without repair: the copy ran again rather than
        // verification patching what the missing capture left out.
        let repaired = done.verification?.moves.reduce(0) { $0 + $1.repaired }
        #expect(repaired == 0, "verification repaired \(String(describing: repaired)) rows")
        #expect(router.shardMap == plan.target)
        try await MigrationLoad.checkLedger(ledger, router: router, atLeast: 1_000)
    }
}
