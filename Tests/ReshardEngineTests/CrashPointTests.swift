import ReshardCore
import ReshardEngine
import Testing

@Suite struct CrashPointTests {
    @Test func parsesPhaseStepAndRound() throws {
        let point = try #require(CrashPoint("cutting_over:publish#2"))
        #expect(point.phase == .cuttingOver)
        #expect(point.step == .publish)
        #expect(point.round == 2)
        let plain = try #require(CrashPoint("copying"))
        #expect(plain.phase == .copying && plain.step == nil && plain.round == 1)
    }

    @Test(arguments: ["", "copy", "copying#0", "copying#x", "cutting_over:later", "#3", "baking:"])
    func rejectsMalformedText(text: String) {
        #expect(CrashPoint(text) == nil)
    }

    /// A step with nothing to do is passed within the round before it (an empty drain ends the
    /// fence's round waiting on publish), so a step matches rounds that end at it or later.
    @Test func aCutoverStepMatchesRoundsThatEndAtItOrLater() throws {
        let drain = try #require(CrashPoint("cutting_over:drain"))
        #expect(!drain.matches(phase: .cuttingOver, step: .hold))
        #expect(!drain.matches(phase: .cuttingOver, step: .fence))
        #expect(drain.matches(phase: .cuttingOver, step: .drain))
        #expect(drain.matches(phase: .cuttingOver, step: .publish))
        #expect(drain.matches(phase: .cuttingOver, step: .release))
        #expect(!drain.matches(phase: .cuttingOver, step: nil))
        #expect(!drain.matches(phase: .rollingBack, step: .drain))
        let phaseOnly = try #require(CrashPoint("rolling_back"))
        #expect(phaseOnly.matches(phase: .rollingBack, step: nil) && phaseOnly.matches(phase: .rollingBack, step: .fence))
        #expect(CutoverStep.allCases.sorted() == [.hold, .fence, .drain, .publish, .release])
    }

    @Test func firesOnTheNthMatchingRoundOnly() throws {
        let current = try RingPlacement(virtualNodes: 4).shardMap(for: [ShardID("s1")!, ShardID("s2")!], generation: 1)
        let plan = try MigrationPlanner.plan(
            .addShard(ShardID("s3")!), current: current, registered: [ShardID("s1")!, ShardID("s2")!, ShardID("s3")!], virtualNodes: 4)
        var machine = MigrationStateMachine(id: "m", plan: plan, tables: [TableName("t")!], settings: MigrationSettings())
        let point = try #require(CrashPoint("copying#2"))
        #expect(!point.isReached(by: machine))  // planned
        machine.on(.start, now: 0)
        machine.on(.prepared(positions: [:]), now: 0)
        #expect(!point.isReached(by: machine))
        #expect(point.isReached(by: machine))
        #expect(!point.isReached(by: machine))
    }
}
