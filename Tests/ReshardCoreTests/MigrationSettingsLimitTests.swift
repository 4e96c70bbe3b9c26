import Foundation
import Testing

@testable import ReshardCore

@Suite struct MigrationSettingsLimitTests {
    @Test func theDefaultsAreWithinTheBounds() {
        #expect(MigrationSettings().violation() == nil)
    }

    @Test func eachOptionOutsideItsBoundsIsNamed() {
        let cases: [(String, (inout MigrationSettings) -> Void)] = [
            ("chunk_rows", { $0.chunkRows = 0 }),
            ("chunk_rows", { $0.chunkRows = .max }),
            ("max_lag_changes", { $0.maxLagChanges = -1 }),
            ("cleanup_chunk_rows", { $0.cleanupChunkRows = MigrationSettings.maxRows + 1 }),
            ("max_rows_per_second", { $0.maxRowsPerSecond = 0 }),
            ("max_lag_ms", { $0.maxLagMillis = .max }),
            ("bake_ms", { $0.bakeMillis = .max }),
            ("bake_ms", { $0.bakeMillis = MigrationSettings.maxMillis + 1 }),
            ("tombstone_grace_ms", { $0.tombstoneGraceMillis = .max }),
            ("canary_step_ms", { $0.canaryStepMillis = 86_400_001 }),
            ("failed_stream_retention_ms", { $0.failedStreamRetentionMillis = .max }),
            ("verify_subranges", { $0.verifySubranges = 0 }),
            ("verify_subranges", { $0.verifySubranges = 65_537 }),
            ("max_repair_passes", { $0.maxRepairPasses = 11 }),
            ("max_cutover_attempts", { $0.maxCutoverAttempts = 0 }),
            ("copy_parallelism", { $0.copyParallelism = 1_000 }),
            ("cutover_budget_ms", { $0.cutoverBudgetMillis = 0 }),
            ("cutover_budget_ms", { $0.cutoverBudgetMillis = 60_001 }),
            ("cutover_budget_ms", { $0.cutoverBudgetMillis = .max }),
            ("router_follow_ms", { $0.routerFollowMillis = 0 }),
            ("router_follow_ms", { $0.routerFollowMillis = 600_001 }),
            ("router_follow_ms", { $0.routerFollowMillis = .max }),
            ("latency_factor", { $0.latencyFactor = 1.0 }),
            ("latency_factor", { $0.latencyFactor = .nan }),
            ("latency_factor", { $0.latencyFactor = .infinity }),
            ("canary_steps", { $0.canarySteps = [50, 10] }),
            ("canary_steps", { $0.canarySteps = [0] }),
            ("canary_steps", { $0.canarySteps = [101] }),
            ("canary_steps", { $0.canarySteps = [.nan] }),
            ("canary_steps", { $0.canarySteps = (1...101).map { Double($0) / 1.01 } }),
        ]
        for (option, change) in cases {
            var settings = MigrationSettings()
            change(&settings)
            #expect(settings.violation()?.option == option, "\(option): \(String(describing: settings.violation()))")
        }
    }

    @Test func theBoundsThemselvesAreAccepted() {
        var settings = MigrationSettings()
        settings.chunkRows = MigrationSettings.maxRows
        settings.maxLagMillis = MigrationSettings.maxMillis
        settings.bakeMillis = 0
        settings.canaryStepMillis = 86_400_000
        settings.failedStreamRetentionMillis = 7 * 86_400_000
        settings.verifySubranges = 65_536
        settings.latencyFactor = 100
        settings.canarySteps = []
        #expect(settings.violation() == nil)
    }

    @Test func aVerificationPassComparesABoundedNumberOfSubranges() {
        let settings = MigrationSettings(verifySubranges: 65_536)
        #expect(settings.verifyParts(moves: 1, tables: 1) == 65_536)
        #expect(settings.verifyParts(moves: 205, tables: 1) * 205 <= MigrationSettings.maxVerifySubrangesPerPass)
        #expect(settings.verifyParts(moves: 205, tables: 3) == MigrationSettings.maxVerifySubrangesPerPass / 615)
        #expect(settings.verifyParts(moves: 1_000_000, tables: 10) == 1)
        #expect(MigrationSettings().verifyParts(moves: 205, tables: 1) == 256)
    }

    @Test func saturatingAdditionStopsAtTheTop() {
        #expect(UInt64(5).adding(saturating: 6) == 11)
        #expect(UInt64.max.adding(saturating: 1) == .max)
        #expect(UInt64(1).adding(saturating: .max) == .max)
    }

    /// A machine as a journal with every duration at 2^64-1 decodes it (edited by hand, or
    /// written before the bounds existed).
    func absurdJournal(of machine: MigrationStateMachine) throws -> MigrationStateMachine {
        var text = String(decoding: try JSONEncoder().encode(machine), as: UTF8.self)
        for field in ["bakeMillis", "maxLagMillis", "tombstoneGraceMillis", "canaryStepMillis"] {
            text.replace(try Regex("\"\(field)\":[0-9]+"), with: "\"\(field)\":18446744073709551615")
        }
        let decoded = try JSONDecoder().decode(MigrationStateMachine.self, from: Data(text.utf8))
        #expect(decoded.settings.bakeMillis == .max)
        return decoded
    }

    func started() throws -> MigrationStateMachine {
        let current = try RingPlacement(virtualNodes: 8).shardMap(for: shards(2), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(shard("s3")), current: current, registered: Set(shards(3)), virtualNodes: 8)
        var machine = MigrationStateMachine(id: "m1", plan: plan, tables: [TableName("t")!], settings: MigrationSettings())
        #expect(machine.on(.start, now: 0) == .accepted)
        return machine
    }

    @Test func aMigrationWithSettingsOutOfBoundsDoesNotStart() throws {
        let current = try RingPlacement(virtualNodes: 8).shardMap(for: shards(2), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(shard("s3")), current: current, registered: Set(shards(3)), virtualNodes: 8)
        var machine = MigrationStateMachine(id: "m1", plan: plan, tables: [TableName("t")!], settings: MigrationSettings(bakeMillis: .max))
        guard case .rejected(let reason) = machine.on(.start, now: 0) else {
            Issue.record("started")
            return
        }
        #expect(reason.contains("bake_ms"))
        #expect(machine.phase == .planned)
    }

    @Test func aRestartedJournalOutOfBoundsFailsWithTheReasonAndCanOnlyBeRolledBack() throws {
        var machine = try absurdJournal(of: try started())
        #expect(machine.on(.restarted(publishedGeneration: nil), now: 1_000) == .accepted)
        #expect(machine.phase == .failed)
        #expect(machine.failure?.contains("max_lag_ms must be") == true || machine.failure?.contains("bake_ms must be") == true)
        guard case .rejected(let reason) = machine.on(.resume, now: 1_001) else {
            Issue.record("resumed with absurd settings")
            return
        }
        #expect(reason.contains("roll it back"))
        #expect(machine.on(.rollback, now: 1_002) == .accepted)
        #expect(machine.phase == .rollingBack)
    }

    @Test func absurdDurationsSaturateInsteadOfTrapping() throws {
        // Without the restart check, a machine carrying 2^64-1 still computes its deadlines: the
        // bake ends at "never" instead of trapping on `now + bake_ms` (which killed every start).
        let steps = MigrationStateMachineTests()
        var original = try steps.machine()
        steps.toCutover(&original)
        var m = try absurdJournal(of: original)
        #expect(m.work(now: 2) == [.holdWrites(m.plan.moves.map(\.range), generation: m.plan.target.generation)])
        m.on(.writesHeld, now: 10)
        var positions = Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, UInt64(20)) })
        positions[shard("s3")] = 40
        m.on(.fenced(positions: positions), now: 11)
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 20, backlog: 0, lagMillis: 0), now: 12) }
        m.on(.published, now: 13)
        m.on(.writesReleased, now: 14)
        #expect(m.phase == .baking)
        #expect(m.bakeUntil == .max)
        m.on(.tick, now: .max - 1)
        #expect(m.phase == .baking)
    }
}
