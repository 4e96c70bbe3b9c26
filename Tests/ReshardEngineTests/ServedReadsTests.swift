import CoreMetrics
import Logging
import ReshardCore
import Testing

@testable import ReshardEngine

/// A router's judgement of the reads it serves from the new owners alone: it sends them back by
/// itself, once enough reads say the new owners fail or are slow, and serves again only at a new
/// epoch.
@Suite struct ServedReadsTests {
    func directive(epoch: Int, percent: Double = 100, migration: String = "m1") throws -> RouteDirective {
        let ids = [ShardID("s1")!, ShardID("s2")!]
        let current = try RingPlacement(virtualNodes: 4).shardMap(for: [ids[0]], generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(ids[1]), current: current, registered: Set(ids), virtualNodes: 4)
        return RouteDirective(
            migration: migration, epoch: epoch, plan: plan, routes: .newestReads, shadowPercent: 0, lagAllowanceMillis: 0,
            serve: RouteDirective.ReadServe(percent: percent, maxErrorRate: 0.05, maxLatencyFactor: 2))
    }

    func served() -> ServedReads { ServedReads(logger: Logger(label: "test"), factory: NOOPMetricsHandler.instance) }

    /// A hash in the move's range.
    func moving(_ directive: RouteDirective) -> UInt64 { directive.plan.moves[0].range.start }

    @Test func onlyKeysOfAMoveUnderTheNewMapAreServedAndOnlyAtTheirShare() throws {
        let reads = served()
        let config = try directive(epoch: 1)
        #expect(!reads.pick(moving(config), generation: 2), "nothing served before a directive")
        reads.configure(config)
        #expect(reads.pick(moving(config), generation: config.plan.target.generation))
        #expect(!reads.pick(moving(config), generation: config.plan.target.generation - 1), "a router still on the old map reads by it")
        let outside = (0..<1_024).map { UInt64($0) << 54 }.first { config.plan.move(containing: $0) == nil }
        if let outside { #expect(!reads.pick(outside, generation: config.plan.target.generation)) }
        reads.configure(try directive(epoch: 1, percent: 0.000_001))
        let picks = (0..<1_000).filter { _ in reads.pick(moving(config), generation: 9) }.count
        #expect(picks < 5, "a tiny share serves almost nothing")
    }

    @Test func anErrorRateOverTheThresholdSendsReadsBackOnceEnoughWereServed() throws {
        let reads = served()
        let config = try directive(epoch: 3)
        reads.configure(config)
        // 10 failures in the first 10 reads: too few reads to judge.
        for _ in 0..<10 { reads.recordServed(micros: 100, failed: true, nowMillis: 5) }
        #expect(reads.stats.active && reads.stats.sentBack == nil)
        for _ in 0..<89 { reads.recordServed(micros: 100, failed: false, nowMillis: 6) }
        #expect(reads.stats.sentBack == nil, "99 served")
        reads.recordServed(micros: 100, failed: false, nowMillis: 7)
        let stats = reads.stats
        #expect(!stats.active && stats.sentBackAt == 7 && stats.sentBack?.contains("10 of 100 served reads failed") == true)
        #expect(!reads.pick(moving(config), generation: 9), "sent back: reads take the old path")
        reads.configure(config)
        #expect(!reads.pick(moving(config), generation: 9) && reads.stats.sentBack != nil, "the same epoch does not serve again")
        reads.configure(try directive(epoch: 4))
        #expect(reads.pick(moving(config), generation: 9) && reads.stats.sentBack == nil, "a new verification does")
        reads.configure(try directive(epoch: 1, migration: "m2"))
        #expect(reads.stats.served == 0, "a new migration starts its figures over")
    }

    @Test func aSlowNewOwnerSendsReadsBackButNoiseDoesNot() throws {
        let reads = served()
        reads.configure(try directive(epoch: 1))
        // Twice as slow as the old path, but within the millisecond of noise.
        for _ in 0..<300 {
            reads.recordOldPath(micros: 400, nowMillis: 1)
            reads.recordServed(micros: 1_300, failed: false, nowMillis: 1)
        }
        #expect(reads.stats.sentBack == nil && reads.stats.servedP99Micros == 1_300 && reads.stats.oldPathP99Micros == 400)
        for _ in 0..<50 { reads.recordServed(micros: 5_000, failed: false, nowMillis: 2) }
        let stats = reads.stats
        #expect(stats.sentBack?.contains("over 2.0 × the old path") == true && stats.sentBackAt == 2)
        #expect(stats.served == 350 && stats.errors == 0 && stats.oldPath == 300)
    }
}
