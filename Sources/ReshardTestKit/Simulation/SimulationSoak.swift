import ReshardCore

/// Many seeds of one scenario, a few at a time: what the test suite runs briefly and the
/// benchmark's soak runs by the ten thousand.
public enum SimulationSoak {
    /// What the seeds of one scenario did together.
    public struct Totals: Sendable {
        /// The runs' figures, summed.
        public var outcome = SimulationRun.Outcome()
        /// Seeds run.
        public var runs = 0
        /// One line per failed seed, with how to replay it.
        public var failures: [String] = []

        /// Nothing yet.
        public init() {}
    }

    /// Runs `seeds` of `scenario`, `parallelism` at a time; each seed is independent and
    /// deterministic whatever runs beside it.
    public static func run(
        _ scenario: SimulationRun.Scenario, seeds: [UInt64], faults: SimWorld.Faults = SimWorld.Faults(),
        mutations: Set<MemoryShardStore.Mutation> = [], parallelism: Int = 2
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
            for _ in 0..<max(1, parallelism) { add() }
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
}
