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

    /// Runs `seeds` of `scenario`, `parallelism` at a time, each lane on its own thread; each
    /// seed is independent and deterministic whatever runs beside it.
    public static func run(
        _ scenario: SimulationRun.Scenario, seeds: [UInt64], faults: SimWorld.Faults = SimWorld.Faults(),
        mutations: Set<MemoryShardStore.Mutation> = [], parallelism: Int = 2
    ) async -> Totals {
        let lanes = (0..<max(1, parallelism)).map { LaneExecutor(name: "sim-lane-\($0)") }
        defer { for lane in lanes { lane.stop() } }
        return await withTaskGroup(of: (Int, UInt64, Result<SimulationRun.Outcome, any Error>).self) { group in
            var totals = Totals()
            var pending = seeds[...]
            for (index, lane) in lanes.enumerated() {
                guard let seed = pending.popFirst() else { break }
                group.addTask(executorPreference: lane) { await Self.one(scenario, seed, faults, mutations, lane: index) }
            }
            while let (index, seed, result) = await group.next() {
                totals.runs += 1
                switch result {
                case .success(let outcome):
                    totals.outcome.coverage.add(outcome.coverage)
                    totals.outcome.approvals += outcome.approvals
                    totals.outcome.resumes += outcome.resumes
                    totals.outcome.rounds += outcome.rounds
                case .failure(let error):
                    let strategy = SimulationRun(scenario: scenario, seed: seed).strategy
                    totals.failures.append(
                        "seed \(seed), scenario \(scenario), strategy \(strategy.rawValue): \(error) (replay: RESHARD_SIM_SEED=\(seed))")
                }
                guard let next = pending.popFirst() else { continue }
                let lane = lanes[index]
                group.addTask(executorPreference: lane) { await Self.one(scenario, next, faults, mutations, lane: index) }
            }
            return totals
        }
    }

    /// One seed's run, tagged with the lane it ran on so the lane's next seed can follow.
    private static func one(
        _ scenario: SimulationRun.Scenario, _ seed: UInt64, _ faults: SimWorld.Faults, _ mutations: Set<MemoryShardStore.Mutation>,
        lane: Int
    ) async -> (Int, UInt64, Result<SimulationRun.Outcome, any Error>) {
        let run = SimulationRun(scenario: scenario, seed: seed, faults: faults, mutations: mutations)
        do {
            return (lane, seed, .success(try await run.run()))
        } catch {
            return (lane, seed, .failure(error))
        }
    }
}
