import Logging
import ReshardCore
import ReshardEngine
import ReshardStore

/// One seeded run: clients and routers in a `SimWorld`, the production `MigrationRunner` (its
/// machine, roles and journal) migrating under them with a manual clock, faults injected into
/// its store operations, its process killed and restarted from the journal, and an operator
/// approving gates, pausing, resuming and rolling back. The invariants are checked after every
/// step; at the end everyone heals and the layout must be exact.
public struct SimulationRun: Sendable {
    /// What the migration does and what the operator does to it.
    public enum Scenario: String, CaseIterable, Sendable, CustomStringConvertible {
        case addShard, removeShard, moveRange, rebalance, rollbackBeforeSwitch, rollbackDuringBake, gated, canaryHalt, pauseResume
        public var description: String { rawValue }
    }

    /// The scenario.
    public let scenario: Scenario
    /// The seed every choice of the run is drawn from.
    public let seed: UInt64
    /// How the migration moves data: by default the seed picks among the available strategies,
    /// so a soak covers them all and a seed alone replays a run.
    public let strategy: MigrationStrategy
    /// How often faults strike.
    public var faults: SimWorld.Faults
    /// Deliberate bugs in the shards (none for a real run).
    public var mutations: Set<MemoryShardStore.Mutation>

    /// A run of `scenario` from `seed`.
    public init(
        scenario: Scenario, seed: UInt64, strategy: MigrationStrategy? = nil, faults: SimWorld.Faults = SimWorld.Faults(),
        mutations: Set<MemoryShardStore.Mutation> = []
    ) {
        self.scenario = scenario
        self.seed = seed
        let available = MigrationStrategy.allCases.filter(\.isAvailable)
        self.strategy = strategy ?? available[Int(seed % UInt64(available.count))]
        self.faults = faults
        self.mutations = mutations
    }

    /// What a run did.
    public struct Outcome: Sendable {
        /// What the world saw.
        public var coverage = SimWorld.Coverage()
        /// The migration as it ended.
        public var machine: MigrationStateMachine?
        /// Gates approved, failures resumed, rounds the runner ran.
        public var approvals = 0
        public var resumes = 0
        public var rounds = 0

        /// Nothing yet.
        public init() {}
    }

    static let logger = Logger(label: "reshard.sim", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs the migration to its end; throws `SimWorld.Violation` at the first broken invariant.
    public func run() async throws -> Outcome {
        let ids = (1...4).compactMap { ShardID("s\($0)") }
        let initial = try RingPlacement(virtualNodes: 4).shardMap(for: Array(ids.prefix(3)), generation: 1)
        let world = try await SimWorld(seed: seed, shards: ids, map: initial, keyCount: 40, faults: faults, mutations: mutations)
        // Data before the migration starts, through the clients.
        for _ in 0..<150 { world.clientStep(router: 0) }
        world.writeColdKeys()
        let plan: MigrationPlan
        do {
            plan = try MigrationPlanner.plan(
                kind(ids), current: initial, registered: Set(ids), rowHashes: world.liveHashes, virtualNodes: 4)
        } catch {
            // The seed's rows happen to be balanced already: nothing to migrate.
            if scenario == .rebalance, error.code == "nothing_to_move" { return Outcome() }
            throw error
        }
        var settings = MigrationSettings(
            chunkRows: 5, maxLagChanges: 3, maxLagMillis: 200, bakeMillis: 300, cleanupChunkRows: 4, maxCutoverAttempts: 100,
            copyParallelism: 3, tombstoneGraceMillis: 100, canarySteps: [10, 100], canaryStepMillis: 40,
            gates: scenario == .gated ? [.cuttingOver, .cleaningUp] : [], cutoverBudgetMillis: 60, strategy: strategy)
        // The world's routers follow notices at once or within a few dozen steps, not a second.
        settings.routerFollowMillis = 300
        if strategy.servesReadsGradually {
            settings.readSteps = [50, 100]
            settings.readStepMillis = 40
        }
        var machine = MigrationStateMachine(id: "sim", plan: plan, tables: world.tables, settings: settings)
        machine.on(.start, now: world.clock.wallMillis)
        _ = try await world.metadata.admitMigration(id: machine.id, journal: try MigrationJournal.encode(machine))

        var outcome = Outcome()
        var runner = makeRunner(machine, world, journaled: machine)
        var endedByItself = false
        var rollbackAsked = false
        var ended: MigrationStateMachine?
        // The machine as the runner last left it: it changes only in a step or on a command.
        var current = machine
        var retried = 0
        for step in 0... {
            guard step < 40_000 else { throw SimWorld.Violation(description: "no progress: stuck in \(await runner.state.phase)") }
            if world.crashed {
                // The process restarts from its journal, as MigrationManager.resumeAll does.
                // A process's retry figures die with it.
                retried += current.pacing?.secondWrites.retried ?? 0
                world.restart()
                guard let journal = try await world.metadata.migrations().first?.journal else {
                    throw SimWorld.Violation(description: "no journal")
                }
                let decoded = try MigrationJournal.decode(journal)
                var restored = decoded
                if restored.phase.isTerminal {
                    // Died tidying up an ended migration: not resumed, its streams left to a sweep.
                    ended = restored
                    break
                }
                restored.on(.restarted(publishedGeneration: world.metadata.current?.generation), now: world.clock.wallMillis)
                // A command the process took but had not journaled died with it: the operator
                // sees the migration still going and asks again.
                rollbackAsked = rollbackAsked && (restored.phase == .rollingBack || restored.interrupted == .rollingBack)
                runner = makeRunner(restored, world, journaled: decoded)
                current = restored
            }
            // Whether rows, maps or fences may have changed: only then are the invariants checked.
            var changed = true
            var everyKey = true
            switch world.random(1_000) {
            case 0..<300:
                world.clientStep(router: Int(world.random(2)))
                everyKey = false
            case 300..<800:
                outcome.rounds += 1
                if await !runner.step() { endedByItself = !world.crashed }
                current = await runner.state
            case 800..<830: world.rereadMetadata(router: 1)
            case 830..<850:
                world.toggleNotices(router: 1)
                changed = false
            case 850..<860:
                world.timeOutParkedWrite()
                changed = false
            default:
                world.clock.advance(by: 1 + world.random(20))
                changed = false
            }
            if endedByItself { break }
            // A dead process answers no operator.
            if !world.crashed, await operate(current, runner, world, &outcome, rollbackAsked: &rollbackAsked) {
                current = await runner.state
                changed = true
            }
            if changed { try world.checkInvariants(everyKey: everyKey) }
        }
        let running = await runner.state
        let final = ended ?? running
        outcome.machine = final
        outcome.coverage = world.state.withLock { $0.coverage }
        outcome.coverage.retriedSecondWrites = retried + (current.pacing?.secondWrites.retried ?? 0)
        let expected = expectedMap(plan)
        guard final.phase == expected.phase else {
            throw SimWorld.Violation(description: "ended \(final.phase), expected \(expected.phase): \(final.failure ?? "")")
        }
        try await world.checkEnd(plan: plan, expected: expected, streamsClosed: endedByItself)
        return outcome
    }

    /// What an operator does: approve what waits, resume what failed (or roll it back again),
    /// pause and resume, roll back where the scenario says.
    /// Returns whether it sent a command.
    private func operate(
        _ machine: MigrationStateMachine, _ runner: MigrationRunner, _ world: SimWorld, _ outcome: inout Outcome, rollbackAsked: inout Bool
    ) async -> Bool {
        var commanded = false
        func command(_ event: MigrationEvent) async -> Bool {
            commanded = true
            return await runner.command(event) == .accepted
        }
        if machine.awaitingApproval != nil, world.random(20) == 0, await command(.approve(nil)) { outcome.approvals += 1 }
        if machine.phase == .failed, world.random(30) == 0, await command(rollbackAsked ? .rollback : .resume) { outcome.resumes += 1 }
        if scenario == .pauseResume {
            if [.copying, .catchingUp, .cleaningUp].contains(machine.phase), world.random(60) == 0 { _ = await command(.pause) }
            if machine.phase == .paused, world.random(20) == 0 { _ = await command(.resume) }
        }
        if !rollbackAsked, shouldRollBack(machine) { rollbackAsked = await command(.rollback) }
        return commanded
    }

    private func makeRunner(_ machine: MigrationStateMachine, _ world: SimWorld, journaled: MigrationStateMachine) -> MigrationRunner {
        let clock = world.clock
        let scenario = scenario
        return MigrationRunner(
            machine: machine, stores: world, routers: world, metadata: world.metadata, logger: Self.logger, tailBatch: 7, clock: clock,
            wallMillis: { clock.wallMillis },
            hook: { machine in
                if scenario == .canaryHalt, machine.phase == .canary, (machine.routesShown?.shadowPercent ?? 0) > 0 {
                    world.plantCorruptCopy(machine.plan)
                }
                // Reads served step by step are sent back once, as a router does when the new
                // owners fail or slow down: the migration fails, and the operator resumes it.
                if machine.phase == .servingReads, machine.routesShown?.serve != nil {
                    world.readMovingKeys(machine.plan)
                    if scenario == .canaryHalt { world.sendServedReadsBack() }
                }
                // The process dies after the round's work, before its journal.
                if world.random(1_000) < 40 { world.crash() }
                return []
            },
            // Production runs a round's items side by side: they interleave at every store
            // operation, in an order the seed draws.
            executor: { work, perform in
                // A lone item has nothing to interleave with.
                if work.count == 1, let item = work.first { return [await perform(item)] }
                return await SeededScheduler(seed: world.random(.max)).run(work.map { item in { await perform(item) } })
            }, journaled: journaled)
    }

    private func kind(_ ids: [ShardID]) -> MigrationKind {
        switch scenario {
        case .addShard, .rollbackBeforeSwitch, .rollbackDuringBake, .gated, .canaryHalt, .pauseResume: .addShard(ids[3])
        case .removeShard: .removeShard(ids[1])
        case .moveRange: .moveRange(HashRange(start: 1 << 62, last: 1 << 63), to: ids[3])
        case .rebalance: .rebalance
        }
    }

    private func shouldRollBack(_ machine: MigrationStateMachine) -> Bool {
        switch scenario {
        case .rollbackBeforeSwitch: machine.phase == .cuttingOver && !machine.switched && machine.cutover?.step != .hold
        // A strategy that switches first is rolled back while it copies after the switch, where
        // its new owners still lack rows (its bake is like every other's).
        case .rollbackDuringBake:
            strategy.switchesFirst ? machine.phase == .copying && machine.switched : machine.phase == .baking
        default: false
        }
    }

    private func expectedMap(_ plan: MigrationPlan) -> (map: ShardMap, phase: MigrationPhase) {
        switch scenario {
        // After dual writes a rollback republishes the old layout one generation on (its routers
        // then write no second writes).
        case .rollbackBeforeSwitch:
            (
                strategy.writesSecond ? plan.source.withGeneration(plan.target.generation) : plan.source,
                .rolledBack
            )
        case .rollbackDuringBake: (plan.source.withGeneration(plan.target.generation + 1), .rolledBack)
        default: (plan.target, .done)
        }
    }
}
