import Testing

@testable import ReshardCore

/// A seeded simulation of routers, shards, clients and the migrator in one process: random
/// interleavings of writes, deletes, reads, copy chunks, changelog deliveries, crashes before
/// and after journaling, missed router notices, aborted cutovers and rollbacks. DESIGN.md's
/// invariants are checked after every step; a failure names its seed.
@Suite struct MigrationSimulationTests {
    enum Scenario: String, CaseIterable, CustomTestStringConvertible {
        case addShard, removeShard, moveRange, rebalance, rollbackBeforeSwitch, rollbackDuringBake, gated
        var testDescription: String { rawValue }
    }

    static let seeds: [UInt64] = Array(1...10)

    struct Coverage {
        var ackedDuringMigration = 0
        var fencedWrites = 0
        var crashes = 0
        var abortedCutovers = 0
        var rowsCopied = 0
        var tombstonesPurged = 0
        var shadowReads = 0
        var approvals = 0
    }

    @Test(arguments: Scenario.allCases)
    func invariantsHoldThroughout(scenario: Scenario) throws {
        var coverage = Coverage()
        for seed in Self.seeds {
            do {
                try run(scenario, seed: seed, coverage: &coverage)
            } catch {
                Issue.record("seed \(seed), scenario \(scenario): \(error)")
            }
        }
        // The runs must have exercised the hard parts, or passing means nothing.
        #expect(coverage.ackedDuringMigration > 200)
        #expect(coverage.crashes > 10)
        // A rebalance moves only the rows above the mean: a few per run of 40 keys.
        #expect(coverage.rowsCopied > (scenario == .rebalance ? 20 : 100))
        if scenario != .rollbackBeforeSwitch && scenario != .rollbackDuringBake {
            #expect(coverage.tombstonesPurged > 0, "cleanup should have purged old tombstones")
        }
        if scenario != .rollbackBeforeSwitch {
            #expect(coverage.fencedWrites > 0, "a stale router should have hit a fence")
        }
        // A rebalance's moves hold only the few keys above the mean.
        #expect(coverage.shadowReads > (scenario == .rebalance ? 3 : 10), "the canary should have shadow-read")
        if scenario == .gated {
            #expect(coverage.approvals == 2 * Self.seeds.count, "both gates of every run should have been approved")
        }
    }

    func run(_ scenario: Scenario, seed: UInt64, coverage: inout Coverage) throws {
        let ids = shards(4)
        let initial = try RingPlacement(virtualNodes: 4).shardMap(for: Array(ids.prefix(3)), generation: 1)
        var world = SimWorld(seed: seed, shardIDs: ids, map: initial, keyCount: 40)
        // Data before the migration starts, through the clients.
        for _ in 0..<150 { try world.clientStep(router: 0) }

        let kind: MigrationKind
        switch scenario {
        case .addShard, .rollbackBeforeSwitch, .rollbackDuringBake, .gated: kind = .addShard(shard("s4"))
        case .removeShard: kind = .removeShard(shard("s2"))
        case .moveRange: kind = .moveRange(HashRange(start: 1 << 62, last: 1 << 63), to: shard("s4"))
        case .rebalance: kind = .rebalance
        }
        let hashes = world.shards.values.flatMap { $0.rows.values.map(\.hash) }
        let plan = try MigrationPlanner.plan(kind, current: initial, registered: Set(ids), rowHashes: hashes, virtualNodes: 4)
        let settings = MigrationSettings(
            chunkRows: 5, maxLagChanges: 3, maxLagMillis: 200, bakeMillis: 300, cleanupChunkRows: 4, maxCutoverAttempts: 100,
            tombstoneGraceMillis: 100, canarySteps: [10, 100], canaryStepMillis: 40,
            gates: scenario == .gated ? [.cuttingOver, .cleaningUp] : [], cutoverBudgetMillis: 40)
        var migrator = SimMigrator(machine: MigrationStateMachine(id: "sim", plan: plan, tables: world.tables, settings: settings))
        #expect(migrator.command(.start, now: world.now) == .accepted)
        let ackedBefore = world.ackedWrites

        var rolledBack = false
        var steps = 0
        while !migrator.machine.phase.isTerminal {
            steps += 1
            guard steps < 40_000 else { throw SimWorld.Violation(description: "no progress: stuck in \(migrator.machine.phase)") }
            let roll = world.random.next() % 1000
            switch roll {
            case 0..<380: try world.clientStep(router: Int(world.random.next() % 2))
            case 380..<850: migrator.step(&world, crashAfter: false)
            case 850..<860: migrator.step(&world, crashAfter: true)
            case 860..<865: migrator.crash(&world)
            case 865..<875:
                // A slow shard: the clock jumps while the migrator waits on it.
                world.now += 20 + world.random.next() % 40
            case 875..<895: world.routers[1].map = world.metadata
            case 895..<905:
                // A held write waited too long: its client got a 503 (not acknowledged).
                if !world.routers[0].parked.isEmpty { world.routers[0].parked.removeFirst() }
            default: world.now += 1 + world.random.next() % 20
            }
            if migrator.machine.awaitingApproval != nil, world.random.next() % 40 == 0 {
                // An operator approves after a while; replication must stay live meanwhile.
                if migrator.command(.approve(nil), now: world.now) == .accepted { coverage.approvals += 1 }
            }
            if !rolledBack && shouldRollBack(scenario, migrator.machine) {
                rolledBack = migrator.command(.rollback, now: world.now) == .accepted
            }
            // A tick only moves the clock on; what it lets advance is checked below.
            _ = migrator.command(.tick, now: world.now)
            try world.checkInvariants()
        }
        coverage.ackedDuringMigration += world.ackedWrites - ackedBefore
        coverage.fencedWrites += world.fencedWrites
        coverage.crashes += migrator.crashes
        coverage.abortedCutovers += max(0, migrator.machine.cutoverAttempts - 1)
        coverage.rowsCopied += migrator.machine.rowsCopied
        coverage.tombstonesPurged += migrator.machine.purges.reduce(0) { $0 + $1.rows }
        coverage.shadowReads += world.shadowReads
        // Heal: everyone learns the map, held writes go, then the layout must be exact.
        world.release()
        for index in world.routers.indices { world.routers[index].map = world.metadata }
        try world.checkInvariants()
        world.canary = nil
        let expectDone = scenario != .rollbackBeforeSwitch && scenario != .rollbackDuringBake
        #expect(migrator.machine.phase == (expectDone ? .done : .rolledBack), "seed \(seed)")
        for (id, shard) in world.shards {
            for row in shard.rows.values where plan.move(containing: row.hash) != nil {
                let owner = world.metadata.owner(of: row.hash)
                if owner != id { throw SimWorld.Violation(description: "\(row.pk) left on \(id), owner is \(owner)") }
            }
        }
        let expectedMap: ShardMap =
            switch scenario {
            case .rollbackBeforeSwitch: plan.source
            case .rollbackDuringBake: plan.source.withGeneration(plan.target.generation + 1)
            default: plan.target
            }
        #expect(world.metadata == expectedMap, "seed \(seed)")
    }

    func shouldRollBack(_ scenario: Scenario, _ machine: MigrationStateMachine) -> Bool {
        switch scenario {
        case .rollbackBeforeSwitch: machine.phase == .cuttingOver && !machine.switched && machine.cutover?.step != .hold
        case .rollbackDuringBake: machine.phase == .baking
        default: false
        }
    }
}
