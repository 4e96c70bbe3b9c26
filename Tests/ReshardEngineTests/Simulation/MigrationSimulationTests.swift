import Foundation
import ReshardCore
import ReshardTestKit
import Testing

/// The seeded simulation of DESIGN.md: the production migrator (state machine, runner, roles,
/// journal) over in-memory shards with a manual clock, clients and a stale router around it,
/// faults in its store operations, its process killed at every step and restarted from the
/// journal. Invariants are checked after every step; a failure names its seed.
///
/// `RESHARD_SIM_SEEDS` sets how many seeds each scenario runs (40 by default, eight per strategy; the
/// 10,000-seed soak is `reshard-bench simulate`), `RESHARD_SIM_SEED` replays one.
@Suite struct MigrationSimulationTests {
    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let one = environment["RESHARD_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        let count = environment["RESHARD_SIM_SEEDS"].flatMap(Int.init) ?? 40
        return (1...UInt64(max(1, count))).map { $0 }
    }

    @Test(arguments: SimulationRun.Scenario.allCases)
    func invariantsHoldThroughout(scenario: SimulationRun.Scenario) async {
        let seeds = Self.seeds
        let started = ContinuousClock.now
        let totals = await SimulationSoak.run(scenario, seeds: seeds)
        for failure in totals.failures.prefix(5) { Issue.record("\(failure)") }
        let coverage = totals.outcome.coverage
        print(
            "simulation \(scenario): \(totals.runs) seeds in \(ContinuousClock.now - started), \(totals.outcome.rounds) rounds, "
                + "\(coverage.ackedWrites) acknowledged writes, \(coverage.crashes) crashes, \(coverage.injectedFailures) injected failures, "
                + "second writes \(coverage.secondWrites) (\(coverage.failedSecondWrites) failed, \(coverage.queuedSecondWrites) queued, "
                + "\(coverage.retriedSecondWrites) retried), \(coverage.copiedRows) rows copied on access, "
                + "\(coverage.oldOwnerReads) reads answered by an old owner after the switch, "
                + "\(coverage.servedReads) reads served by a new owner alone step by step (\(coverage.readsSentBack) sent back)"
        )
        guard seeds.count >= 8 else { return }
        // The runs must have exercised the hard parts, or passing means nothing.
        #expect(coverage.crashes > seeds.count, "processes should have been killed")
        #expect(coverage.injectedFailures > 0 && coverage.interleavedOps > 100)
        #expect(coverage.shadowReads > 0, "the canary should have shadow-read")
        // The seed picks the strategy: a fifth of these runs write both owners.
        #expect(coverage.secondWrites > 0 && coverage.failedSecondWrites > 0, "dual_write runs should have made second writes")
        // (Nine in ten failed ones are queued: a scenario that moves little may fail too few.)
        #expect(coverage.queuedSecondWrites > 0 || coverage.failedSecondWrites < 3, "and queued the failed ones for retries")
        // (A write queued just before the cutover is obsolete and never retried: only a few queued
        // writes need not have been.)
        #expect(coverage.retriedSecondWrites > 0 || coverage.queuedSecondWrites < 5, "which the migrator retried")
        #expect(coverage.recordedWrites > 0, "traffic_replay runs should have recorded writes")
        if scenario != .rollbackBeforeSwitch {
            #expect(coverage.copiedRows + coverage.oldOwnerReads > 0, "the strategies that switch first should have read the old owners")
        }
        if ![.rollbackBeforeSwitch, .rollbackDuringBake].contains(scenario) {
            #expect(coverage.servedReads > 0, "write_new_read_old runs should have served reads step by step")
        }
        if scenario != .rollbackBeforeSwitch { #expect(coverage.fencedWrites > 0, "a stale router should have hit a fence") }
        if scenario == .gated { #expect(totals.outcome.approvals >= 2 * seeds.count, "both gates of every run approved") }
        if scenario == .canaryHalt {
            #expect(coverage.mismatches > 0 && totals.outcome.resumes > 0, "the canary should have halted on the planted copy")
            #expect(coverage.readsSentBack > 0, "and write_new_read_old runs should have sent their served reads back")
        }
    }

    /// A checker that passes a broken store proves nothing: each deliberate bug, one per
    /// invariant, must be caught within a few seeds.
    @Test(arguments: MemoryShardStore.Mutation.allCases)
    func eachBrokenInvariantIsCaught(mutation: MemoryShardStore.Mutation) async {
        // Clients busier than usual, so that races a bug needs come within a few seeds.
        let totals = await SimulationSoak.run(
            .addShard, seeds: Array(1...64), faults: SimWorld.Faults(interleave: 600), mutations: [mutation])
        #expect(!totals.failures.isEmpty, "the simulation did not notice \(mutation) in 64 seeds")
    }
}
