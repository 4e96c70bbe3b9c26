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
