import Foundation
import Testing

@testable import ReshardCore

/// An operator's adjustment of a running migration (`.adjust`): the copy ceiling and the bake
/// change in the machine, its journal and its throttle; a bad one changes nothing.
extension MigrationStateMachineTests {
    /// Walks `m` through the cutover into baking at wall time 14 (bake ends at 14 + bake).
    func toBaking(_ m: inout MigrationStateMachine) {
        toCutover(&m)
        m.on(.writesHeld, now: 10)
        var positions = Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, UInt64(20)) })
        positions[shard("s3")] = 40
        m.on(.fenced(positions: positions), now: 11)
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 20, backlog: 0, lagMillis: 0), now: 12) }
        m.on(.published, now: 13)
        m.on(.writesReleased, now: 14)
    }

    @Test func aNewCeilingReachesTheThrottleAndTheJournal() throws {
        var m = try machine(settings: MigrationSettings(bakeMillis: 100, copyParallelism: 4, maxRowsPerSecond: 800))
        #expect(m.on(.start, now: 0) == .accepted)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        _ = m.nextRound(now: 1, foregroundP99Micros: nil)
        #expect(m.pacing?.throttle.maxRowsPerSecond == 800)
        let before = m.journalMark(now: 1)

        #expect(m.on(.adjust(MigrationAdjustment(maxRowsPerSecond: 8_000)), now: 2) == .accepted)
        #expect(m.settings.maxRowsPerSecond == 8_000)
        #expect(m.settings.bakeMillis == 100, "the bake is left as it was")
        #expect(m.pacing?.throttle.maxRowsPerSecond == 8_000)
        #expect(m.journalDue(since: before, now: 2, command: true))

        // The journal carries it: a restart rebuilds the throttle from the adjusted settings.
        var restored = try JSONDecoder().decode(MigrationStateMachine.self, from: try JSONEncoder().encode(m))
        restored.on(.restarted(publishedGeneration: 1), now: 3)
        #expect(restored.settings.maxRowsPerSecond == 8_000)
        _ = restored.nextRound(now: 4, foregroundP99Micros: nil)
        #expect(restored.pacing?.throttle.maxRowsPerSecond == 8_000)
    }

    @Test func aNewBakeCountsFromTheBakesStart() throws {
        var m = try machine()
        toBaking(&m)
        #expect(m.phase == .baking && m.bakeUntil == 114)
        #expect(m.on(.adjust(MigrationAdjustment(bakeMillis: 1_000)), now: 50) == .accepted)
        #expect(m.bakeUntil == 1_014)
        m.on(.tick, now: 500)
        #expect(m.phase == .baking)
        // A bake shorter than the time already baked is over at the next round.
        #expect(m.on(.adjust(MigrationAdjustment(bakeMillis: 30)), now: 600) == .accepted)
        #expect(m.bakeUntil == 44)
        m.on(.tick, now: 601)
        #expect(m.phase == .cleaningUp)
    }

    @Test func aBakeSetBeforeItBeginsIsTheOneItRuns() throws {
        var m = try machine()
        #expect(m.on(.start, now: 0) == .accepted)
        #expect(m.on(.adjust(MigrationAdjustment(bakeMillis: 5_000)), now: 0) == .accepted)
        #expect(m.bakeUntil == nil)
        var walked = try machine()
        walked.settings = m.settings
        toBaking(&walked)
        #expect(walked.bakeUntil == 5_014)
    }

    @Test func aBadOrLateAdjustmentChangesNothing() throws {
        var m = try machine(settings: MigrationSettings(bakeMillis: 100, maxRowsPerSecond: 800))
        #expect(m.on(.start, now: 0) == .accepted)
        let refused: [MigrationAdjustment] = [
            MigrationAdjustment(),
            MigrationAdjustment(maxRowsPerSecond: 0),
            MigrationAdjustment(maxRowsPerSecond: -1),
            MigrationAdjustment(maxRowsPerSecond: MigrationSettings.maxRows + 1),
            MigrationAdjustment(maxRowsPerSecond: .max),
            MigrationAdjustment(bakeMillis: MigrationSettings.maxMillis + 1),
            MigrationAdjustment(bakeMillis: .max),
            MigrationAdjustment(maxRowsPerSecond: 10, bakeMillis: .max),
        ]
        for adjustment in refused {
            guard case .rejected(let reason) = m.on(.adjust(adjustment), now: 1) else {
                Issue.record("\(adjustment) was accepted")
                continue
            }
            #expect(!reason.isEmpty)
            #expect(m.settings.maxRowsPerSecond == 800 && m.settings.bakeMillis == 100)
        }
        var done = try machine()
        toBaking(&done)
        done.on(.tick, now: 200)
        for task in done.deletions.indices { done.on(.chunkDeleted(task: task, rows: 0, done: true), now: 201) }
        for task in done.purges.indices { done.on(.tombstonesPurged(task: task, rows: 0, done: true), now: 201) }
        done.on(.finished, now: 202)
        #expect(done.phase == .done)
        #expect(done.on(.adjust(MigrationAdjustment(maxRowsPerSecond: 5)), now: 203) != .accepted)
        #expect(done.settings.maxRowsPerSecond == nil)
    }
}

extension ThrottleTests {
    @Test func aNewCeilingTakesEffectAtTheNextDecision() {
        var throttle = Throttle(maxRowsPerSecond: 500, maxChunk: 1_000, parallelism: 4)
        #expect(throttle.decide(foregroundP99Micros: nil, backlog: 0).chunkRows == 125)
        throttle.setCeiling(maxRowsPerSecond: 2_000)
        #expect(throttle.decide(foregroundP99Micros: nil, backlog: 0).chunkRows == 500)
        throttle.setCeiling(maxRowsPerSecond: nil)
        let free = throttle.decide(foregroundP99Micros: nil, backlog: 0)
        #expect(free.chunkRows == 1_000 && free.reason == nil)
    }
}
