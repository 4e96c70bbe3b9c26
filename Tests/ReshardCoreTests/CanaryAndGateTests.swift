import Testing

@testable import ReshardCore

/// The canary of reads, shadow mismatches, approval gates and the bake, phase by phase.
@Suite struct CanaryAndGateTests {
    let table = TableName("t")!

    func machine(_ settings: MigrationSettings) throws -> MigrationStateMachine {
        let current = try RingPlacement(virtualNodes: 8).shardMap(for: shards(2), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(shard("s3")), current: current, registered: Set(shards(3)), virtualNodes: 8)
        return MigrationStateMachine(id: "m1", plan: plan, tables: [table], settings: settings)
    }

    /// Copying and catching up done; the machine is in `verifying` (or waiting before it).
    func toVerifying(_ m: inout MigrationStateMachine, now: UInt64 = 1) {
        m.on(.start, now: 0)
        m.on(.prepared(positions: [:]), now: 0)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 0) }
        caughtUp(&m, now: now)
    }

    func caughtUp(_ m: inout MigrationStateMachine, now: UInt64) {
        // Positions only grow; `now` is a fine one.
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: now, backlog: 0, lagMillis: 0), now: now) }
    }

    /// Ends the canary step that ends at `end`: the runner checks the shadow reads up to then.
    func passStep(_ m: inout MigrationStateMachine, end: UInt64) {
        m.on(.tick, now: end)
        #expect(m.work(now: end).last == .checkShadowReads(since: m.canary?.startedAt ?? 0, upTo: end))
        m.on(.shadowReadsChecked(upTo: end), now: end)
    }

    func isTail(_ work: MigrationWork) -> Bool {
        if case .tail(.forward, _, _, _) = work { return true }
        return false
    }

    /// A verification is made at changelog positions; one that took longer than the lag allowed
    /// leaves the writes made meanwhile behind, and a cutover started then would hold client
    /// writes while they drain. The machine reads the changelogs again first.
    @Test func aSlowVerificationIsCaughtUpOnBeforeTheCutover() throws {
        var m = try machine(MigrationSettings(maxLagMillis: 500, canarySteps: []))
        toVerifying(&m)
        var slow = VerificationReport(at: 1)
        slow.micros = 2_000_000
        slow.positions = Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })
        m.on(.verified(slow), now: 2_001)
        #expect(m.phase == .verifying)
        let work = m.work(now: 2_001)
        #expect(!work.isEmpty && work.allSatisfy(isTail))
        caughtUp(&m, now: 2_100)
        m.on(.tick, now: 2_100)
        #expect(m.phase == .cuttingOver)

        var quick = try machine(MigrationSettings(maxLagMillis: 500, canarySteps: []))
        toVerifying(&quick)
        var report = VerificationReport(at: 1)
        report.micros = 400_000
        quick.on(.verified(report), now: 401)
        #expect(quick.phase == .cuttingOver)
    }

    @Test func theCanaryWalksItsStepsThenCutsOver() throws {
        var m = try machine(MigrationSettings(canarySteps: [1, 10, 50, 100], canaryStepMillis: 100))
        toVerifying(&m)
        #expect(m.canaryReadPercent == nil)
        m.on(.verified(VerificationReport(at: 1)), now: 1_000)
        #expect(m.phase == .canary)
        for (index, percent) in [1.0, 10, 50, 100].enumerated() {
            let start = 1_000 + UInt64(index) * 100
            #expect(m.canaryReadPercent == percent)
            // Replication stays live for the whole step, and the runner sleeps until its end.
            let work = m.work(now: start + 50)
            #expect(work.filter(isTail).count == m.plan.sources.count)
            #expect(work.last == .waitUntil(start + 100))
            m.on(.tick, now: start + 99)
            #expect(m.canaryReadPercent == percent, "a step lasts its whole time")
            passStep(&m, end: start + 100)
        }
        #expect(m.phase == .cuttingOver)
        #expect(m.canaryReadPercent == nil)
        #expect(m.phaseLog.map(\.phase).suffix(3) == [.verifying, .canary, .cuttingOver])
    }

    @Test func theLastStepWaitsForCatchUpBeforeTheCutover() throws {
        var m = try machine(MigrationSettings(canarySteps: [100], canaryStepMillis: 10))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        m.on(.tailed(.forward, shard: m.plan.sources[0], position: 2, backlog: 5_000, lagMillis: 0), now: 5)
        passStep(&m, end: 11)
        m.on(.tick, now: 20)
        #expect(m.phase == .canary)
        #expect(m.canaryReadPercent == 100)
        caughtUp(&m, now: 21)
        #expect(m.phase == .cuttingOver)
    }

    @Test func aRealShadowMismatchHaltsTheCanaryAndResumingProvesAgain() throws {
        var m = try machine(MigrationSettings(canarySteps: [1, 100], canaryStepMillis: 100))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        passStep(&m, end: 101)
        #expect(m.canaryReadPercent == 100)
        m.on(.shadowMismatch("t/k1: corrupt"), now: 150)
        #expect(m.phase == .failed)
        #expect(m.interrupted == .canary)
        #expect(m.failure?.contains("t/k1: corrupt") == true)
        // Reads are back on the old owners, and nothing is fenced or held to undo.
        #expect(m.canaryReadPercent == nil)
        #expect(m.work(now: 150).isEmpty)
        // Resume repairs by verifying again, then runs the canary from its first step.
        #expect(m.on(.resume, now: 200) == .accepted)
        #expect(m.phase == .verifying)
        #expect(m.work(now: 200) == [.verify(m.verificationRequest)])
        m.on(.verified(VerificationReport(at: 200)), now: 210)
        #expect(m.phase == .canary)
        #expect(m.canaryReadPercent == 1)
        #expect(m.verifications == 2)
    }

    /// Time alone does not pass a step: a mismatch found in its last moments must halt the
    /// canary, so the step waits for the check of the reads up to its end, and a check that
    /// finds a mismatch fails it instead.
    @Test func aStepPassesOnlyOnceItsShadowReadsAreCheckedUpToItsEnd() throws {
        var m = try machine(MigrationSettings(canarySteps: [100], canaryStepMillis: 100))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        m.on(.tick, now: 5_000)
        #expect(m.phase == .canary, "the step's time is long gone, but nobody checked its reads")
        #expect(m.work(now: 5_000).last == .checkShadowReads(since: 1, upTo: 101))
        m.on(.shadowReadsChecked(upTo: 100), now: 5_001)
        #expect(m.phase == .canary, "a check that ends before the step does not cover it")
        m.on(.shadowMismatch("t/k1: corrupt"), now: 5_002)
        #expect(m.phase == .failed)
        #expect(m.interrupted == .canary)

        var clean = try machine(MigrationSettings(canarySteps: [100], canaryStepMillis: 100))
        toVerifying(&clean)
        clean.on(.verified(VerificationReport(at: 1)), now: 1)
        clean.on(.shadowReadsChecked(upTo: 101), now: 101)
        #expect(clean.phase == .cuttingOver)
        #expect(clean.canaryPassed)
    }

    @Test func aMismatchOutsideTheCanaryChangesNothing() throws {
        var m = try machine(MigrationSettings(canarySteps: []))
        toVerifying(&m)
        m.on(.shadowMismatch("late report"), now: 2)
        #expect(m.phase == .verifying)
    }

    @Test func rollbackFromTheCanaryDeletesTheCopies() throws {
        var m = try machine(MigrationSettings(canarySteps: [50], canaryStepMillis: 100))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        #expect(m.on(.rollback, now: 5) == .accepted)
        #expect(m.canaryReadPercent == nil)
        #expect(m.rollback == .deleteCopies)
    }

    @Test func anAbortedCutoverAfterAPassedCanaryDoesNotRunItAgain() throws {
        var m = try machine(MigrationSettings(canarySteps: [100], canaryStepMillis: 10))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        passStep(&m, end: 11)
        #expect(m.phase == .cuttingOver)
        m.on(.writesHeld, now: 12)
        m.on(.tick, now: 13 + m.settings.cutoverBudget)
        m.on(.fencesRemoved, now: 14)
        m.on(.writesReleased, now: 15)
        caughtUp(&m, now: 16)
        #expect(m.phase == .verifying)
        m.on(.verified(VerificationReport(at: 17)), now: 17)
        #expect(m.phase == .cuttingOver)
    }

    @Test func aGateHoldsTheCutoverUntilApprovedWithReplicationLive() throws {
        var m = try machine(MigrationSettings(canarySteps: [], gates: [.cuttingOver]))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 10)
        #expect(m.phase == .verifying)
        #expect(m.awaitingApproval == .cuttingOver)
        #expect(m.awaitingSince == 10)
        let work = m.work(now: 500)
        #expect(work.filter(isTail).count == m.plan.sources.count)
        #expect(work.last == .waitUntil(600))
        m.on(.tick, now: 5_000)
        #expect(m.phase == .verifying)
        #expect(m.awaitingSince == 10, "the wait keeps its start")
        #expect(m.on(.approve(nil), now: 6_000) == .accepted)
        #expect(m.phase == .cuttingOver)
        #expect(m.awaitingApproval == nil)
        #expect(m.work(now: 6_000) == [.holdWrites(m.plan.moves.map(\.range), generation: m.plan.target.generation)])
    }

    @Test func gatesBeforeEarlierPhasesHoldToo() throws {
        var m = try machine(MigrationSettings(canarySteps: [10], canaryStepMillis: 10, gates: [.copying, .canary]))
        m.on(.start, now: 0)
        m.on(.prepared(positions: [:]), now: 1)
        #expect(m.phase == .preparing)
        #expect(m.awaitingApproval == .copying)
        #expect(!m.work(now: 2).contains { if case .prepare = $0 { true } else { false } }, "no second prepare while waiting")
        m.on(.approve(.copying), now: 3)
        #expect(m.phase == .copying)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 4) }
        caughtUp(&m, now: 5)
        m.on(.verified(VerificationReport(at: 5)), now: 6)
        #expect(m.phase == .verifying)
        #expect(m.awaitingApproval == .canary)
        m.on(.approve(nil), now: 7)
        #expect(m.phase == .canary)
    }

    @Test func theBakeIsRespectedEvenWhenCleanupWasApprovedEarly() throws {
        var m = try machine(MigrationSettings(bakeMillis: 1_000, canarySteps: [], gates: [.cleaningUp]))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        walkCutover(&m, from: 2)
        #expect(m.phase == .baking)
        let bakeUntil = try #require(m.bakeUntil)
        #expect(m.on(.approve(.cleaningUp), now: 10) == .accepted, "approval ahead of time")
        m.on(.tick, now: bakeUntil - 1)
        #expect(m.phase == .baking)
        m.on(.tick, now: bakeUntil)
        #expect(m.phase == .cleaningUp)
    }

    @Test func afterTheBakeCleanupWaitsForItsApprovalWithReverseReplicationLive() throws {
        var m = try machine(MigrationSettings(bakeMillis: 1_000, canarySteps: [], gates: [.cleaningUp]))
        toVerifying(&m)
        m.on(.verified(VerificationReport(at: 1)), now: 1)
        walkCutover(&m, from: 2)
        let bakeUntil = try #require(m.bakeUntil)
        m.on(.tick, now: bakeUntil + 5)
        #expect(m.phase == .baking)
        #expect(m.awaitingApproval == .cleaningUp)
        let work = m.work(now: bakeUntil + 10)
        #expect(work.contains { if case .tail(.reverse, _, _, _) = $0 { true } else { false } })
        #expect(!work.contains { if case .deleteChunk = $0 { true } else { false } })
        // Rollback is still possible while cleanup waits.
        var rolled = m
        #expect(rolled.on(.rollback, now: bakeUntil + 20) == .accepted)
        #expect(rolled.awaitingApproval == nil)
        m.on(.approve(nil), now: bakeUntil + 30)
        #expect(m.phase == .cleaningUp)
    }

    @Test func approvalsThatDoNotApplyAreRejected() throws {
        var m = try machine(MigrationSettings(canarySteps: [], gates: [.cuttingOver]))
        if case .rejected(let why) = m.on(.approve(nil), now: 0) {
            #expect(why.contains("not waiting"))
        } else {
            Issue.record("approving with nothing waiting should be rejected")
        }
        if case .rejected(let why) = m.on(.approve(.cleaningUp), now: 0) {
            #expect(why.contains("before_cleanup") && why.contains("before_cutover"))
        } else {
            Issue.record("approving a gate the migration does not have should be rejected")
        }
        #expect(m.on(.approve(.cuttingOver), now: 0) == .accepted)
        #expect(m.approved == [.cuttingOver])
    }

    @Test func aVerificationThatLeftDifferencesFailsAndResumeVerifiesAgain() throws {
        var m = try machine(MigrationSettings(canarySteps: []))
        toVerifying(&m)
        var report = VerificationReport(at: 1)
        report.aggregates = [
            AggregateCheckResult(
                check: try #require(AggregateCheck("t.amount")), old: AggregateSummary(rows: 2, numeric: 2, sum: "5"),
                new: AggregateSummary(rows: 2, numeric: 2, sum: "4"))
        ]
        m.on(.verified(report), now: 2)
        #expect(m.phase == .failed)
        #expect(m.mismatches.first?.contains("t.amount") == true)
        #expect(m.on(.resume, now: 3) == .accepted)
        #expect(m.phase == .verifying)
        #expect(m.work(now: 3) == [.verify(m.verificationRequest)])
    }

    /// hold → fence → drain → publish → release, every source drained.
    func walkCutover(_ m: inout MigrationStateMachine, from now: UInt64) {
        m.on(.writesHeld, now: now)
        m.on(.fenced(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, UInt64(1)) })), now: now + 1)
        m.on(.published, now: now + 2)
        m.on(.writesReleased, now: now + 3)
    }
}
