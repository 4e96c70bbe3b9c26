import Foundation
import ReshardCore
import ReshardTestKit
import Testing

/// The seeded simulation of DESIGN.md: the production migrator (state machine, runner, roles,
/// journal) over in-memory shards with a manual clock, clients and a stale router around it,
/// faults in its store operations, its process killed at every step and restarted from the
/// journal. Invariants are checked after every step; a failure names its seed.
///
/// `RESHARD_SIM_SEEDS` sets how many seeds each scenario runs (a few dozen by default; the
/// 10,000-seed soak is `scripts/simulate`), `RESHARD_SIM_SEED` replays one.
@Suite struct MigrationSimulationTests {
    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let one = environment["RESHARD_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        let count = environment["RESHARD_SIM_SEEDS"].flatMap(Int.init) ?? 24
        return (1...UInt64(max(1, count))).map { $0 }
    }

    struct Totals {
        var outcome = SimulationRun.Outcome()
        var runs = 0
        var failures: [String] = []
    }

    /// Runs `seeds` of `scenario`, two at a time, and sums what they did.
    static func run(
        _ scenario: SimulationRun.Scenario, seeds: [UInt64], faults: SimWorld.Faults = SimWorld.Faults(),
        mutations: Set<MemoryShardStore.Mutation> = []
    ) async -> Totals {
        await withTaskGroup(of: (UInt64, Result<SimulationRun.Outcome, any Error>).self) { group in
            var totals = Totals()
            var pending = seeds[...]
            func add() {
                guard let seed = pending.popFirst() else { return }
                group.addTask {
                    do {
                        let run = SimulationRun(scenario: scenario, seed: seed, faults: faults, mutations: mutations)
                        return (seed, .success(try await run.run()))
                    } catch {
                        return (seed, .failure(error))
                    }
                }
            }
            for _ in 0..<2 { add() }
            for await (seed, result) in group {
                totals.runs += 1
                switch result {
                case .success(let outcome):
                    totals.outcome.coverage.add(outcome.coverage)
                    totals.outcome.approvals += outcome.approvals
                    totals.outcome.resumes += outcome.resumes
                    totals.outcome.rounds += outcome.rounds
                case .failure(let error):
                    totals.failures.append("seed \(seed), scenario \(scenario): \(error) (replay: RESHARD_SIM_SEED=\(seed))")
                }
                add()
            }
            return totals
        }
    }

    @Test(arguments: SimulationRun.Scenario.allCases)
    func invariantsHoldThroughout(scenario: SimulationRun.Scenario) async {
        let seeds = Self.seeds
        let started = ContinuousClock.now
        let totals = await Self.run(scenario, seeds: seeds)
        for failure in totals.failures.prefix(5) { Issue.record("\(failure)") }
        let coverage = totals.outcome.coverage
        print(
            "simulation \(scenario): \(totals.runs) seeds in \(ContinuousClock.now - started), \(totals.outcome.rounds) rounds, "
                + "\(coverage.ackedWrites) acknowledged writes, \(coverage.crashes) crashes, \(coverage.injectedFailures) injected failures"
        )
        guard seeds.count >= 8 else { return }
        // The runs must have exercised the hard parts, or passing means nothing.
        #expect(coverage.crashes > seeds.count, "processes should have been killed")
        #expect(coverage.injectedFailures > 0 && coverage.interleavedOps > 100)
        #expect(coverage.shadowReads > 0, "the canary should have shadow-read")
        if scenario != .rollbackBeforeSwitch { #expect(coverage.fencedWrites > 0, "a stale router should have hit a fence") }
        if scenario == .gated { #expect(totals.outcome.approvals >= 2 * seeds.count, "both gates of every run approved") }
        if scenario == .canaryHalt {
            #expect(coverage.mismatches > 0 && totals.outcome.resumes > 0, "the canary should have halted on the planted copy")
        }
    }

    /// A checker that passes a broken store proves nothing: each deliberate bug, one per
    /// invariant, must be caught within a few seeds.
    @Test(arguments: MemoryShardStore.Mutation.allCases)
    func eachBrokenInvariantIsCaught(mutation: MemoryShardStore.Mutation) async {
        // Clients busier than usual, so that races a bug needs come within a few seeds.
        let totals = await Self.run(.addShard, seeds: Array(1...64), faults: SimWorld.Faults(interleave: 600), mutations: [mutation])
        #expect(!totals.failures.isEmpty, "the simulation did not notice \(mutation) in 64 seeds")
    }
}
