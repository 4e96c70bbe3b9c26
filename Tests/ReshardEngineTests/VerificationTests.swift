import Foundation
import Logging
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

/// Verification and the canary on real SQLite shards under a live write load: corruption
/// planted on the new owner is found, classified and repaired with no false mismatch from the
/// concurrent writes; a real shadow-read mismatch halts the canary and lag does not.
@Suite(.serialized) struct VerificationTests {
    static let table = TableName("kv")!

    /// What the corruption step planted, by the class verification must report.
    struct Planted: Sendable {
        var byClass: [DiffClass: [String]] = [:]
        var count: Int { byClass.values.reduce(0) { $0 + $1.count } }
    }

    /// A cluster with `kv` preloaded (writers' keys k0…k999) and cold rows nobody writes to
    /// during the test, plus an empty s4 to add.
    struct Setup {
        let fixture: RouterFixture
        let plan: MigrationPlan
        let ledger: Ledger
        /// Cold keys in moving ranges, with the rows the old owners hold.
        let cold: [String: WriteReceipt]
    }

    static func setUp() async throws -> Setup {
        let fixture = try await RouterFixture.make(shards: 3)
        let router = fixture.router
        let ledger = Ledger()
        let plan = try await MigrationLoad.prepareAddShard(fixture, ledger: ledger)
        var cold: [String: WriteReceipt] = [:]
        for i in 0..<400 {
            let pk = "cold\(i)"
            let body = Array("{\"amount\":\(i).25}".utf8)
            let receipt = try await router.put(table: "kv", pk: pk, body: body)
            ledger.acknowledge(pk, version: receipt.version, deleted: false, body: body)
            if plan.move(containing: KeyHash.of(pk)) != nil { cold[pk] = receipt }
        }
        #expect(cold.count > 40)
        return Setup(fixture: fixture, plan: plan, ledger: ledger, cold: cold)
    }

    /// Runs the migration with writers going until it ends (bounded); the hook acts at exact points.
    static func run(
        _ setup: Setup, settings: MigrationSettings, hook: @escaping MigrationRoundHook,
        whileRunning: @escaping @Sendable (MigrationRunner) async throws -> Void = { _ in }
    ) async throws -> MigrationRunner {
        let router = setup.fixture.router
        let machine = MigrationStateMachine(id: "m-verify", plan: setup.plan, tables: [table], settings: settings)
        let runner = MigrationRunner(
            machine: machine, router: router, metadata: setup.fixture.metadata, logger: Logger(label: "test"), hook: hook)
        let migration = Task { await runner.run() }
        #expect(await runner.command(.start) == .accepted)
        async let operating: Void = whileRunning(runner)
        try await MigrationLoad.write(
            router: router, ledger: setup.ledger, writers: 3, keys: 1_000, seed: 5, steps: 40_000, checkEvery: 25,
            stop: { await runner.state.phase.isTerminal })
        try await operating
        _ = await migration.value
        return runner
    }

    @Test func corruptionOnTheNewOwnerIsFoundClassifiedAndRepairedUnderLoad() async throws {
        let setup = try await Self.setUp()
        defer { setup.fixture.remove() }
        let check = try #require(AggregateCheck("kv.amount"))
        let settings = MigrationSettings(
            chunkRows: 100, maxLagChanges: 20, maxLagMillis: 2_000, bakeMillis: 200, cleanupChunkRows: 500, latencyFactor: nil,
            tombstoneGraceMillis: 0, checks: [check], canarySteps: [])
        let planted = Mutex<Planted?>(nil)
        let fixture = setup.fixture
        let runner = try await Self.run(setup, settings: settings) { machine in
            // Once, right before the verify round: plant every class of difference on the new owner.
            guard machine.phase == .verifying, machine.verifications == 0, planted.withLock({ $0 == nil }) else { return [] }
            do {
                let done = try await Self.corrupt(fixture: fixture, plan: machine.plan, cold: setup.cold)
                planted.withLock { $0 = done }
            } catch {
                Issue.record("could not corrupt the new owner: \(error)")
                planted.withLock { $0 = Planted() }
            }
            return []
        }
        let final = await runner.state
        #expect(final.phase == .done, "ended in \(final.phase): \(final.failure ?? "")")
        let report = try #require(final.verification)
        let expected = try #require(planted.withLock { $0 })
        // Every planted difference found in its class, and nothing else: the writers running all
        // along produced no false mismatch.
        #expect(report.differences == expected.byClass.mapValues(\.count), "\(report.differences)")
        #expect(report.repaired == expected.count)
        #expect(report.passed)
        #expect(report.moves.allSatisfy { $0.clean && $0.subranges > 0 })
        #expect(report.moves.filter { $0.differenceCount > 0 }.allSatisfy { $0.passes == 2 }, "a repair is followed by a clean pass")
        #expect(report.moves.filter { $0.differenceCount == 0 }.allSatisfy { $0.passes == 1 && $0.mismatchedSubranges == 0 })
        #expect(report.rowsCompared >= setup.cold.count)
        let aggregate = try #require(report.aggregates.first)
        #expect(aggregate.matches)
        #expect(aggregate.old.numeric == setup.cold.count, "every cold row in a moving range has an amount")
        // Every repaired row reads back as the old owner had it, from the new owner, after cleanup.
        for pk in expected.byClass.values.joined() where !pk.hasPrefix("extra") {
            let original = try #require(setup.cold[pk])
            let read = try await fixture.router.get(table: "kv", pk: pk, shardKey: nil)
            #expect(read.version == original.version && read.shard == ShardID("s4")!, "\(pk)")
            #expect(read.body.contains("amount"), "\(pk): \(read.body)")
        }
        for pk in expected.byClass[.extraOnTarget] ?? [] {
            await #expect(throws: RouterError.self) { _ = try await fixture.router.get(table: "kv", pk: pk, shardKey: nil) }
        }
        try await MigrationLoad.checkLedger(setup.ledger, router: fixture.router, atLeast: 1_400)
    }

    /// `write_new_read_old` verifies after its switch, the other way round: the new owner (which
    /// takes the writes) against the old one drained by reverse replication. Differences planted
    /// on both sides are found in their classes and repaired toward the newer version, with
    /// nothing deleted: a row only the old owner has, or has newer, goes onto the new owner.
    @Test func afterASwitchThatCameFirstDifferencesAreRepairedTowardTheNewerSide() async throws {
        let setup = try await Self.setUp()
        defer { setup.fixture.remove() }
        let settings = MigrationSettings(
            chunkRows: 100, maxLagChanges: 20, maxLagMillis: 2_000, bakeMillis: 200, cleanupChunkRows: 500, latencyFactor: nil,
            tombstoneGraceMillis: 0, canarySteps: [], strategy: .writeNewReadOld)
        let fixture = setup.fixture
        let planted = Mutex<(byClass: [DiffClass: [String]], newer: [String: StoredRow])?>(nil)
        let runner = try await Self.run(setup, settings: settings) { machine in
            guard machine.phase == .verifying, machine.verifications == 0, planted.withLock({ $0 == nil }) else { return [] }
            do {
                let done = try await Self.plantBothWays(fixture: fixture, plan: machine.plan, cold: setup.cold)
                // A planted newer version wins by design, as a write would have.
                for row in done.newer.values {
                    setup.ledger.acknowledge(row.pk, version: row.version, deleted: false, body: Array((row.body ?? "").utf8))
                }
                planted.withLock { $0 = done }
            } catch {
                Issue.record("could not plant differences: \(error)")
                planted.withLock { $0 = ([:], [:]) }
            }
            return []
        }
        let final = await runner.state
        #expect(final.phase == .done, "ended in \(final.phase): \(final.failure ?? "")")
        let report = try #require(final.verification)
        let expected = try #require(planted.withLock { $0 })
        #expect(report.differences == expected.byClass.mapValues(\.count), "\(report.differences)")
        #expect(report.passed && report.moves.allSatisfy(\.clean))
        // What only the old owner had, or had newer, now reads from the new owner.
        for pk in expected.byClass[.extraOnTarget] ?? [] {
            let read = try await fixture.router.get(table: "kv", pk: pk, shardKey: nil)
            #expect(read.version == setup.cold[pk]?.version && read.shard == ShardID("s4")!, "\(pk)")
        }
        for (pk, row) in expected.newer {
            let read = try await fixture.router.get(table: "kv", pk: pk, shardKey: nil)
            #expect(read.version == row.version && read.body == row.body, "\(pk)")
        }
        try await MigrationLoad.checkLedger(setup.ledger, router: fixture.router, atLeast: 1_400)
    }

    /// Plants differences after the switch: on the old owners, dropped rows, older versions,
    /// flipped content and newer versions; on the new owner, dropped rows (a copy not made).
    static func plantBothWays(fixture: RouterFixture, plan: MigrationPlan, cold: [String: WriteReceipt]) async throws
        -> (byClass: [DiffClass: [String]], newer: [String: StoredRow])
    {
        let keys = cold.keys.sorted()
        func row(_ pk: String, _ version: UInt64, _ body: String?) -> StoredRow {
            StoredRow(table: table, pk: pk, shardKey: pk, version: version, body: body)
        }
        let (droppedOld, olderOld, flippedOld, newerOld, droppedNew) = (
            Array(keys[0..<3]), Array(keys[3..<6]), Array(keys[6..<9]), Array(keys[9..<11]), Array(keys[11..<14])
        )
        var newer: [String: StoredRow] = [:]
        for pk in droppedOld + olderOld + flippedOld + newerOld {
            let old = try fixture.openShard(try #require(plan.move(containing: KeyHash.of(pk))).source.rawValue)
            let version = try #require(cold[pk]).version
            if droppedOld.contains(pk) { _ = try await old.repair(table: table, overwrite: [], remove: [pk]) }
            if olderOld.contains(pk) {
                _ = try await old.repair(table: table, overwrite: [row(pk, version - 1, "{\"amount\":1}")], remove: [])
            }
            if flippedOld.contains(pk) {
                _ = try await old.repair(table: table, overwrite: [row(pk, version, "{\"amount\":9.5}")], remove: [])
            }
            if newerOld.contains(pk) {
                newer[pk] = row(pk, version + 1_000, "{\"amount\":7}")
                _ = try await old.repair(table: table, overwrite: [try #require(newer[pk])], remove: [])
            }
        }
        let target = try fixture.openShard("s4")
        for pk in droppedNew { #expect(try await target.get(table: table, pk: pk) != nil, "\(pk) was copied") }
        _ = try await target.repair(table: table, overwrite: [], remove: droppedNew)
        let byClass: [DiffClass: [String]] = [
            .missingOnTarget: droppedOld, .olderOnTarget: olderOld, .corrupt: flippedOld, .newerOnTarget: newerOld,
            .extraOnTarget: droppedNew,
        ]
        return (byClass, newer)
    }

    /// Plants, on the new owner of cold rows: dropped rows, older versions, flipped content (and a
    /// flipped tombstone flag), versions the old owner never wrote, and rows it never had.
    static func corrupt(fixture: RouterFixture, plan: MigrationPlan, cold: [String: WriteReceipt]) async throws -> Planted {
        let target = try fixture.openShard("s4")
        var keys = cold.keys.sorted()[...]
        func take(_ n: Int) -> [String] {
            let taken = Array(keys.prefix(n))
            keys = keys.dropFirst(n)
            return taken
        }
        var planted = Planted()
        func row(_ pk: String, _ version: UInt64, _ body: String?) -> StoredRow {
            StoredRow(table: table, pk: pk, shardKey: pk, version: version, body: body)
        }
        let dropped = take(3)
        let older = take(3)
        let flipped = take(3)
        let tombstoned = take(1)
        let newer = take(2)
        var overwrite: [StoredRow] = []
        for pk in older { overwrite.append(row(pk, try #require(cold[pk]).version - 1, "{\"amount\":1}")) }
        for pk in flipped { overwrite.append(row(pk, try #require(cold[pk]).version, "{\"amount\":999.5}")) }
        for pk in tombstoned { overwrite.append(row(pk, try #require(cold[pk]).version, nil)) }
        for pk in newer { overwrite.append(row(pk, try #require(cold[pk]).version + 1_000, "{\"amount\":7}")) }
        let extra = (0..<10_000).lazy.map { "extra\($0)" }.filter { plan.move(containing: KeyHash.of($0)) != nil }.prefix(3)
        for pk in extra { overwrite.append(row(pk, 12_345, "{\"amount\":5}")) }
        // Every planted row must have been copied already, or the copy, not the repair, would fix it.
        for pk in dropped + older + flipped + tombstoned + newer { #expect(try await target.get(table: table, pk: pk) != nil, "\(pk)") }
        _ = try await target.repair(table: table, overwrite: overwrite, remove: dropped)
        planted.byClass[.missingOnTarget] = dropped
        planted.byClass[.olderOnTarget] = older
        planted.byClass[.corrupt] = flipped + tombstoned
        planted.byClass[.newerOnTarget] = newer
        planted.byClass[.extraOnTarget] = Array(extra)
        return planted
    }

    @Test func aRealShadowMismatchHaltsTheCanaryWhileLagDoesNot() async throws {
        let setup = try await Self.setUp()
        defer { setup.fixture.remove() }
        let fixture = setup.fixture
        let settings = MigrationSettings(
            chunkRows: 100, maxLagChanges: 20, maxLagMillis: 2_000, bakeMillis: 200, cleanupChunkRows: 500, latencyFactor: nil,
            tombstoneGraceMillis: 0, canarySteps: [100], canaryStepMillis: 1_000)
        let keys = setup.cold.keys.sorted()
        let (lagKey, corruptKey) = (keys[0], keys[1])
        struct Seen: Sendable {
            var lagOnly: ShadowReads.Stats?
            var halted: ShadowReads.Stats?
            var afterHalt: ShadowReads.Stats?
            var answer: String?
        }
        let seen = Mutex<Seen?>(nil)
        let runner = try await Self.run(
            setup, settings: settings,
            hook: { machine in
                // Once, in the canary's first round with the routers shadow-reading. No migration
                // work runs while the hook does, so a write made here has not reached the new
                // owner when it is read back.
                guard machine.phase == .canary, machine.routesShown != nil, machine.verifications == 1, seen.withLock({ $0 == nil })
                else { return [] }
                seen.withLock { $0 = Seen() }
                do {
                    let router = fixture.router
                    let body = Array("{\"amount\":1.5}".utf8)
                    let write = try await router.put(table: "kv", pk: lagKey, body: body)
                    setup.ledger.acknowledge(lagKey, version: write.version, deleted: false, body: body)
                    #expect(try await router.get(table: "kv", pk: lagKey, shardKey: nil).version == write.version)
                    let lagOnly = router.canary.stats
                    let target = try fixture.openShard("s4")
                    let table = Self.table
                    let copy = try #require(try await target.get(table: table, pk: corruptKey))
                    let corrupt = StoredRow(table: table, pk: corruptKey, shardKey: corruptKey, version: copy.version, body: "{\"x\":0}")
                    _ = try await target.repair(table: table, overwrite: [corrupt], remove: [])
                    let answer = try await router.get(table: "kv", pk: corruptKey, shardKey: nil).body
                    let halted = router.canary.stats
                    // Reads already past the pick when the canary halted may still land; after
                    // those, no read is shadowed any more.
                    try await Task.sleep(for: .milliseconds(200))
                    let settled = router.canary.stats
                    for _ in 0..<10 { _ = try await router.get(table: "kv", pk: corruptKey, shardKey: nil) }
                    var afterHalt = router.canary.stats
                    afterHalt.reads -= settled.reads - halted.reads
                    seen.withLock { $0 = Seen(lagOnly: lagOnly, halted: halted, afterHalt: afterHalt, answer: answer) }
                } catch {
                    Issue.record("the canary step failed: \(error)")
                }
                return []
            },
            whileRunning: { runner in
                // The operator resumes the halted migration: it verifies (and repairs) again.
                for _ in 0..<1_500 {
                    let phase = await runner.state.phase
                    if phase == .failed || phase.isTerminal { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let failed = await runner.state
                #expect(failed.phase == .failed && failed.interrupted == .canary, "\(failed.phase)")
                #expect(failed.failure?.contains("\(corruptKey): corrupt") == true, "\(failed.failure ?? "")")
                #expect(failed.canaryReadPercent == nil)
                #expect(fixture.router.canary.stats.active == false)
                #expect(await runner.command(.resume) == .accepted)
            })
        let observed = try #require(seen.withLock { $0 })
        let lagOnly = try #require(observed.lagOnly)
        #expect(lagOnly.lag >= 1 && lagOnly.mismatches == 0 && lagOnly.active, "lag must not halt the canary: \(lagOnly)")
        let halted = try #require(observed.halted)
        #expect(halted.mismatches == 1 && halted.halted && !halted.active)
        // A writer's read in flight at the halt may be recorded after it: look for ours, not the last.
        #expect(halted.recent.contains { $0.pk == corruptKey && $0.outcome == .mismatch(.corrupt) })
        #expect(observed.answer?.contains("amount") == true, "the client got the old owner's answer, not \(observed.answer ?? "")")
        #expect(observed.afterHalt?.reads == halted.reads, "reads went back to the old owner at once")

        let final = await runner.state
        #expect(final.phase == .done, "ended in \(final.phase): \(final.failure ?? "")")
        #expect(final.verifications == 2)
        #expect(final.verification?.differences == [.corrupt: 1], "the resumed verification repaired the corrupt copy")
        #expect(try await fixture.router.get(table: "kv", pk: corruptKey, shardKey: nil).body.contains("amount"))
        try await MigrationLoad.checkLedger(setup.ledger, router: fixture.router, atLeast: 1_400)
    }
}
