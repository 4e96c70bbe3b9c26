import Testing

@testable import ReshardCore

/// The decisions the runner used to make, now the machine's: pacing, retries, the order of a
/// round's results, when to journal, the cutover budget, the canary's directive and checks, and
/// an ended migration's housekeeping. The runner only asks `nextRound`, runs, and calls `finish`.
@Suite struct MigrationRoundTests {
    let steps = MigrationStateMachineTests()

    /// A machine copying, its streams open at position 5.
    func copying(_ settings: MigrationSettings = MigrationSettings(chunkRows: 400, copyParallelism: 4)) throws -> MigrationStateMachine {
        var m = try steps.machine(settings: settings)
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        #expect(m.phase == .copying)
        return m
    }

    static func chunks(_ work: [MigrationWork]) -> [Int] {
        work.compactMap { if case .copyChunk(_, _, _, _, let limit) = $0 { limit } else { nil } }
    }

    @Test func fiveFailedRoundsFailTheMigrationAndEachWaitsOutItsBackoff() throws {
        var m = try copying()
        var now: UInt64 = 10
        for attempt in 1..<MigrationPacing.maxFailures {
            _ = m.nextRound(now: now)
            m.finish(round: [.stepFailed("s1 unreachable"), .stepFailed("s2 unreachable")], now: now)
            #expect(m.phase == .copying, "attempt \(attempt) is retried")
            #expect(m.stepError == "s2 unreachable")
            let backoff = MigrationPacing.backoffMillis(failures: attempt)
            #expect(m.nextRound(now: now + backoff - 1) == [.waitUntil(now + backoff)], "nothing runs during the backoff")
            m.finish(round: [.tick], now: now + backoff - 1)
            #expect(m.pacing?.failures == attempt, "a round that only waited clears nothing")
            now += backoff
        }
        _ = m.nextRound(now: now)
        m.finish(round: [.stepFailed("s1 unreachable")], now: now)
        #expect(m.phase == .failed)
        #expect(m.failure == "s1 unreachable")
    }

    @Test func aRoundThatDidSomethingAndFailedNowhereClearsTheCount() throws {
        var m = try copying()
        _ = m.nextRound(now: 1)
        m.finish(round: [.stepFailed("timeout")], now: 1)
        #expect(m.pacing?.failures == 1)
        let work = m.nextRound(now: 1_000)
        #expect(!work.isEmpty)
        m.finish(round: [.tailed(.forward, shard: m.plan.sources[0], position: 6, backlog: 0, lagMillis: 0)], now: 1_000)
        #expect(m.pacing?.failures == 0)
        #expect(m.stepError == nil)
    }

    /// A copy that finishes marks the backlogs stale; a changelog read of the same round must not
    /// undo that, whichever finished first, or catching up would be skipped at random.
    @Test func aRoundsChangelogReadsCountBeforeItsOtherResults() throws {
        var m = try copying(MigrationSettings(copyParallelism: 1))
        for task in m.copies.indices.dropLast() { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 1) }
        let reads = m.plan.sources.map { MigrationEvent.tailed(.forward, shard: $0, position: 9, backlog: 0, lagMillis: 0) }
        m.finish(round: [.chunkCopied(task: m.copies.count - 1, last: nil, rows: 1, done: true)] + reads, now: 2)
        #expect(m.phase == .catchingUp, "reads made while copying do not count as caught up")
        #expect(m.forward.values.allSatisfy { $0.backlog == .max })
    }

    @Test func theThrottleHalvesChunksWhenTheForegroundSlowsAndRestsBetweenThem() throws {
        var m = try copying()
        let first = m.nextRound(now: 0, foregroundP99Micros: 1_000)
        #expect(Self.chunks(first).allSatisfy { $0 == 400 }, "the baseline is the p99 before copying")
        #expect(m.pacing?.throttle.baselineP99Micros == 1_000)
        m.finish(round: [], now: 1, elapsedMicros: 10_000)
        let slowed = m.nextRound(now: 20, foregroundP99Micros: 5_000)
        #expect(Self.chunks(slowed) == [200], "one half-size chunk while the foreground hurts")
        #expect(m.pacing?.throttle.reason?.contains("p99") == true)
        m.finish(round: [], now: 21, elapsedMicros: 10_000)
        // The next chunk waits a chunk's time per halving: 10 ms after a 10 ms round.
        let resting = m.nextRound(now: 22, foregroundP99Micros: 1_000)
        #expect(Self.chunks(resting).isEmpty)
        #expect(resting.last == .waitUntil(30))
    }

    @Test func aRowsPerSecondCeilingPacesWhatWasCopied() throws {
        var m = try copying(MigrationSettings(chunkRows: 400, copyParallelism: 4, maxRowsPerSecond: 100, latencyFactor: nil))
        #expect(Self.chunks(m.nextRound(now: 0)).allSatisfy { $0 == 25 }, "a second's budget shared by four chunks")
        m.finish(
            round: [.chunkCopied(task: 0, last: nil, rows: 25, done: false), .chunkCopied(task: 1, last: nil, rows: 25, done: false)],
            now: 1)
        // The round after it runs, and the one after that waits until the 50 rows are paid for at
        // 100 rows/s: half a second.
        #expect(!Self.chunks(m.nextRound(now: 2)).isEmpty)
        m.finish(round: [], now: 3)
        let resting = m.nextRound(now: 4)
        #expect(Self.chunks(resting).isEmpty)
        #expect(resting.last == .waitUntil(104), "a rest is taken a tenth of a second at a time")
        #expect(Self.chunks(m.nextRound(now: 501)).isEmpty)
        #expect(!Self.chunks(m.nextRound(now: 502)).isEmpty)
    }

    @Test func anIdleChangelogIsReadAFewTimesASecondWhileCopying() throws {
        var m = try copying()
        func tails(_ work: [MigrationWork]) -> Int { work.filter { if case .tail = $0 { true } else { false } }.count }
        #expect(tails(m.nextRound(now: 0)) == m.plan.sources.count)
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 5, backlog: 0, lagMillis: 0), now: 1) }
        #expect(tails(m.nextRound(now: 100)) == 0, "nothing waits: not read again so soon")
        #expect(tails(m.nextRound(now: 250)) == m.plan.sources.count)
        m.on(.tailed(.forward, shard: m.plan.sources[0], position: 5, backlog: 7, lagMillis: 0), now: 251)
        #expect(tails(m.nextRound(now: 260)) == 1, "a changelog with a backlog is read every round")
    }

    @Test func nothingIsJournaledWhileWritesAreHeldUnlessTheMigrationFails() throws {
        var m = try steps.machine()
        steps.toCutover(&m)
        let journaled = m.journalMark(now: 0)
        m.on(.writesHeld, now: 3)
        #expect(!m.journalDue(since: journaled, now: 3))
        #expect(m.journalDue(since: journaled, now: 3, command: true), "an operator's command is always saved")
        m.on(.failed(reason: "s1 down"), now: 4)
        #expect(m.holding && m.journalDue(since: journaled, now: 4))
        m.on(
            .tailed(.forward, shard: m.plan.sources[0], position: m.forward[m.plan.sources[0]]?.position ?? 0, backlog: 3, lagMillis: 9),
            now: 5)
        #expect(!m.journalDue(since: m.journalMark(now: 5), now: 5_000), "fresher lag figures alone are not worth a save")
    }

    @Test func everyRoundOfProgressIsJournaledAndWhatARestartRelearnsOnlyWithIt() throws {
        var m = try copying()
        let mark = m.journalMark(now: 0)
        let interval = MigrationPacing.relearnedJournalMillis
        m.on(.chunkCopied(task: 0, last: ScanCursor(hash: 9, pk: "k9"), rows: 40, done: false), now: 10)
        #expect(m.journalDue(since: mark, now: 10), "a chunk copied is saved at once: a restart redoes at most one round")
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 20) }
        #expect(m.phase == .catchingUp)
        let entered = m.journalMark(now: 20)
        let source = m.plan.sources[0]
        let position = m.forward[source]?.position ?? 0
        m.on(.tailed(.forward, shard: source, position: position, backlog: 1, lagMillis: 0), now: 30)
        #expect(m.durableProjection != entered.machine, "the stale backlog was read afresh")
        #expect(!m.journalDue(since: entered, now: 30), "a restart reads it again: not worth a save of its own")
        #expect(m.journalDue(since: entered, now: 20 + interval), "but it is saved within a second, for other routers' status")
        m.on(.tailed(.forward, shard: source, position: position + 5, backlog: 0, lagMillis: 0), now: 40)
        #expect(m.journalDue(since: entered, now: 40), "changes applied are progress: saved at once")
    }

    @Test func theCutoverBudgetIsTheMachinesAndOnlyBeforeTheSwitch() throws {
        var m = try steps.machine(settings: MigrationSettings(bakeMillis: 100, cutoverBudgetMillis: 50))
        steps.toCutover(&m)
        m.on(.writesHeld, now: 100)
        #expect(m.nextRound(now: 150).first.map { if case .fence = $0 { true } else { false } } == true)
        #expect(m.nextRound(now: 151).first == .removeFences(m.ranges(byOwner: .forward)))
        #expect(m.phase == .catchingUp && m.holding && m.sourcesFenced)

        var switched = try steps.machine(settings: MigrationSettings(bakeMillis: 100, cutoverBudgetMillis: 50))
        steps.toCutover(&switched)
        switched.on(.writesHeld, now: 100)
        switched.on(.fenced(positions: [:]), now: 101)
        switched.on(.published, now: 102)
        #expect(switched.nextRound(now: 10_000) == [.releaseWrites], "past the switch the cutover only finishes")
    }

    @Test func theCanaryIsShownThroughWorkAndOtherRoutersAreCheckedAboutOnceASecond() throws {
        var m = try steps.machine(settings: MigrationSettings(canarySteps: [10, 100], canaryStepMillis: 5_000), canary: true)
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 0) }
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 9, backlog: 0, lagMillis: 0), now: 1) }
        m.on(.verified(MigrationStateMachineTests.cleanReport), now: 2)
        #expect(m.phase == .canary)
        let directive = try #require(m.routeDirective)
        #expect(
            directive.shadowPercent == 10 && directive.routes == .unchanged && directive.epoch == 1 && directive.lagAllowanceMillis == 1_500
        )
        let first = m.nextRound(now: 3)
        #expect(first.first == .showRoutes(directive))
        #expect(first.contains(.checkShadowReads(since: 2, upTo: 3)))
        m.finish(round: [.routesShown(directive), .shadowReadsChecked(upTo: 3)], now: 3)
        let soon = m.nextRound(now: 500)
        #expect(!soon.contains { if case .showRoutes = $0 { true } else { false } }, "shown once")
        #expect(!soon.contains { if case .checkShadowReads = $0 { true } else { false } }, "checked at most once a second")
        #expect(m.nextRound(now: 1_100).contains(.checkShadowReads(since: 2, upTo: 1_100)))
        // The step's end is always checked, and the step passes on that check only.
        let end = m.nextRound(now: 5_002)
        #expect(end.contains(.checkShadowReads(since: 2, upTo: 5_002)))
        m.finish(round: [.shadowReadsChecked(upTo: 5_002)], now: 5_003)
        #expect(m.canaryReadPercent == 100)
        #expect(m.nextRound(now: 5_004).first == .showRoutes(m.routeDirective))
        m.on(.shadowMismatch("t/k: corrupt"), now: 5_005)
        #expect(m.phase == .failed)
        #expect(m.nextRound(now: 5_006) == [.showRoutes(nil)], "a halted canary leaves the directive")
    }

    @Test func anEndedMigrationClosesItsStreamsAndGivesUpAfterFiveFailures() throws {
        var m = try steps.machine()
        m.on(.start, now: 0)
        #expect(m.on(.rollback, now: 1) == .accepted)
        for index in m.deletions.indices { m.on(.chunkDeleted(task: index, rows: 0, done: true), now: 2) }
        m.on(.finished, now: 3)
        #expect(m.phase == .rolledBack)
        var now: UInt64 = 4
        for _ in 0..<MigrationPacing.maxFailures {
            let work = m.nextRound(now: now)
            #expect(work == [.closeStreams])
            m.finish(round: [.stepFailed("s3 down")], now: now)
            now += 10_000
        }
        #expect(m.nextRound(now: now).isEmpty, "the next start's sweep closes the rest")
        #expect(m.phase == .rolledBack)
    }
}
