import Testing

@testable import ReshardCore

@Suite struct MigrationStateMachineTests {
    let table = TableName("t")!

    /// A verification that found nothing to repair.
    static let cleanReport = VerificationReport(at: 0)

    /// A machine over an add-shard plan; without a canary unless `canary` (the canary has its own tests).
    func machine(settings: MigrationSettings = MigrationSettings(bakeMillis: 100), canary: Bool = false) throws -> MigrationStateMachine {
        var settings = settings
        if !canary { settings.canarySteps = [] }
        let current = try RingPlacement(virtualNodes: 8).shardMap(for: shards(2), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(shard("s3")), current: current, registered: Set(shards(3)), virtualNodes: 8)
        return MigrationStateMachine(id: "m1", plan: plan, tables: [table], settings: settings)
    }

    @Test func aLoneMoveIsCopiedInSlicesThatTileItsRange() throws {
        let current = try RingPlacement(virtualNodes: 8).shardMap(for: shards(2), generation: 1)
        let range = HashRange(start: 1_000, last: 9_999)
        let plan = try MigrationPlanner.plan(.moveRange(range, to: shard("s3")), current: current, registered: Set(shards(3)))
        let settings = MigrationSettings(copyParallelism: 4, canarySteps: [])
        var m = MigrationStateMachine(id: "m1", plan: plan, tables: [table], settings: settings)
        let moves = plan.moves.count
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: plan.sources.map { ($0, 5) })), now: 0)
        // Every move of the plan is cut into 4 / moves slices (at least one) side by side.
        let slices = max(1, 4 / moves)
        #expect(m.copies.count == moves * slices)
        var copied: [Int: [HashRange]] = [:]
        for task in m.copies.indices {
            let chunks = m.work(now: 0).compactMap { item -> (Int, Move)? in
                guard case .copyChunk(let index, let move, _, _, _) = item else { return nil }
                return (index, move)
            }
            guard let (index, move) = chunks.first(where: { $0.0 == task }) ?? chunks.first else {
                Issue.record("no copy chunk for task \(task)")
                return
            }
            copied[m.copies[index].move, default: []].append(move.range)
            m.on(.chunkCopied(task: index, last: nil, rows: 0, done: true), now: 0)
        }
        // The slices of each move tile exactly its range, in order, and go source to target.
        for (move, ranges) in copied {
            let sorted = ranges.sorted { $0.start < $1.start }
            #expect(sorted.count == slices)
            #expect(sorted.first?.start == plan.moves[move].range.start)
            #expect(sorted.last?.last == plan.moves[move].range.last)
            for (left, right) in zip(sorted, sorted.dropFirst()) { #expect(left.last + 1 == right.start) }
        }
        #expect(m.phase == .catchingUp)
    }

    /// Drives a machine through copying and catching up to the start of cutover.
    func toCutover(_ m: inout MigrationStateMachine) {
        #expect(m.on(.start, now: 0) == .accepted)
        #expect(m.work(now: 0) == [.prepare(sources: m.plan.sources, targets: [shard("s3")])])
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        #expect(m.phase == .copying)
        for task in m.copies.indices {
            guard case .copyChunk(let index, _, _, let after, _) = m.work(now: 0).first else {
                Issue.record("expected a copy chunk first")
                return
            }
            #expect(index == task)
            #expect(after == nil)
            m.on(.chunkCopied(task: task, last: ScanCursor(hash: 1, pk: "a"), rows: 10, done: true), now: 0)
        }
        #expect(m.phase == .catchingUp)
        for source in m.plan.sources {
            m.on(.tailed(.forward, shard: source, position: 9, backlog: 0, lagMillis: 0), now: 1)
        }
        #expect(m.phase == .verifying)
        #expect(m.work(now: 1) == [.verify(m.verificationRequest)])
        m.on(.verified(Self.cleanReport), now: 2)
        #expect(m.phase == .cuttingOver)
    }

    @Test func walksEveryPhaseToDone() throws {
        var m = try machine(settings: MigrationSettings(bakeMillis: 100, tombstoneGraceMillis: 50))
        toCutover(&m)
        #expect(m.work(now: 2) == [.holdWrites(m.plan.moves.map(\.range), generation: m.plan.target.generation)])
        m.on(.writesHeld, now: 10)
        guard case .fence(let fences, let generation, _) = m.work(now: 10).first else {
            Issue.record("expected fence")
            return
        }
        #expect(generation == 2)
        #expect(Set(fences.keys) == Set(m.plan.sources))
        var positions = Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, UInt64(20)) })
        positions[shard("s3")] = 40
        m.on(.fenced(positions: positions), now: 11)
        #expect(m.work(now: 11).allSatisfy { if case .tail(.forward, _, 9, 20) = $0 { true } else { false } })
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 20, backlog: 0, lagMillis: 0), now: 12) }
        #expect(m.work(now: 12) == [.publish(m.plan.target)])
        m.on(.published, now: 13)
        #expect(m.switched)
        #expect(m.work(now: 13) == [.releaseWrites])
        m.on(.writesReleased, now: 14)
        #expect(m.phase == .baking)
        #expect(m.pausesMillis == [4])
        #expect(m.work(now: 14) == [.tail(.reverse, shard: shard("s3"), after: 40, through: nil), .waitUntil(114)])
        m.on(.tick, now: 113)
        #expect(m.phase == .baking)
        m.on(.tick, now: 114)
        #expect(m.phase == .cleaningUp)
        #expect(m.on(.rollback, now: 115) != .accepted)
        for (index, task) in m.deletions.enumerated() {
            #expect(m.plan.sources.contains(task.shard))
            m.on(.chunkDeleted(task: index, rows: 3, done: true), now: 116)
        }
        // Tombstones older than cleanup's start minus the grace go from every shard of the new map.
        let horizon = HybridLogicalClock.timestamp(millis: 114 - 50)
        #expect(m.tombstoneHorizon == horizon)
        let purges = m.plan.target.shards.enumerated().map { index, shard in
            MigrationWork.purgeTombstones(task: index, shard: shard, before: horizon, limit: m.settings.cleanupChunkRows)
        }
        #expect(m.work(now: 116) == purges)
        m.on(.tombstonesPurged(task: 0, rows: 2, done: true), now: 116)
        #expect(m.work(now: 116) == Array(purges.dropFirst()))
        for index in m.purges.indices.dropFirst() { m.on(.tombstonesPurged(task: index, rows: 0, done: true), now: 116) }
        #expect(m.work(now: 116) == [.finish(purgeThrough: m.forward.mapValues(\.position))])
        m.on(.finished, now: 117)
        #expect(m.phase == .done)
        #expect(
            m.phaseLog.map(\.phase) == [.preparing, .copying, .catchingUp, .verifying, .cuttingOver, .baking, .cleaningUp, .done])
        let table = MigrationStrategy.cdcBackfill.steps.map(\.phase).filter { $0 != .canary }
        #expect(m.phaseLog.map(\.phase) == table + [.done], "the walk is the strategy's table (no canary steps here)")
        #expect(m.phaseLog.last?.at == 117)
        // An ended migration closes its change streams, then has nothing left to do.
        #expect(m.work(now: 117) == [.closeStreams])
        m.on(.streamsClosed, now: 118)
        #expect(m.work(now: 118).isEmpty)
    }

    @Test func copyResumesFromItsCursorAfterARestart() throws {
        var m = try machine()
        m.on(.start, now: 0)
        m.on(.prepared(positions: [:]), now: 0)
        let cursor = ScanCursor(hash: 77, pk: "k")
        m.on(.chunkCopied(task: 0, last: cursor, rows: 100, done: false, bytes: 4_000), now: 0)
        var restored = m  // what the journal holds
        restored.on(.restarted(publishedGeneration: nil), now: 1)
        guard case .copyChunk(0, _, _, let after, _) = restored.phaseWork(now: 1).first else {
            Issue.record("expected the copy to continue")
            return
        }
        #expect(after == cursor)
        #expect(restored.rowsCopied == 100)
        #expect(restored.bytesCopied == 4_000, "bytes copied are progress, journaled with the rows")
    }

    /// The runner does not journal while writes are held, so after a crash the journal may say
    /// "hold" while the metadata already has the new map: the switch must be finished, and a
    /// rollback must run the cutover backwards instead of deleting the new owners' copies.
    @Test func aRestartReconcilesWithAMapPublishedBeforeTheCrash() throws {
        var m = try machine()
        toCutover(&m)
        #expect(m.sourcesFenced, "fence intent is journaled before the hold")
        let journaled = m  // the last journal before the hold
        var lagging = journaled
        lagging.on(.restarted(publishedGeneration: m.plan.source.generation), now: 50)
        #expect(!lagging.switched && lagging.phase == .cuttingOver, "nothing published yet: the cutover starts over")

        var restored = journaled
        restored.on(.restarted(publishedGeneration: m.plan.target.generation), now: 50)
        #expect(restored.switched)
        // The switch happened: what is left is letting held writes go (the directive may hold them).
        #expect(restored.phaseWork(now: 50) == [.releaseWrites])
        restored.on(.writesReleased, now: 51)
        #expect(restored.phase == .baking)
        #expect(!restored.holding)

        var rolledBack = journaled
        rolledBack.on(.restarted(publishedGeneration: m.plan.target.generation), now: 50)
        #expect(rolledBack.on(.rollback, now: 51) == .accepted)
        #expect(rolledBack.rollback == .reverseCutover, "after the switch a rollback runs the cutover backwards")

        var unswitched = journaled
        unswitched.on(.restarted(publishedGeneration: nil), now: 50)
        #expect(unswitched.on(.rollback, now: 51) == .accepted)
        #expect(unswitched.phaseWork(now: 51) == [.removeFences(unswitched.ranges(byOwner: .forward))])
    }

    @Test func theDurableProjectionIgnoresLagFiguresOnly() throws {
        var m = try machine()
        m.on(.start, now: 0)
        m.on(.prepared(positions: [:]), now: 0)
        let source = m.plan.sources[0]
        var fresher = m
        fresher.on(.tailed(.forward, shard: source, position: 0, backlog: 7, lagMillis: 300), now: 1)
        #expect(fresher != m)
        #expect(fresher.durableProjection == m.durableProjection, "a read that moved nothing need not be journaled")
        var moved = m
        moved.on(.tailed(.forward, shard: source, position: 3, backlog: 0, lagMillis: 0), now: 1)
        #expect(moved.durableProjection != m.durableProjection)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 0, done: true), now: 2) }
        #expect(m.durableProjection.forward[source]?.backlog == .max, "a stale backlog decides when catching up ends")
    }

    @Test func catchingUpWaitsForLagUnderTheThresholds() throws {
        var m = try machine(settings: MigrationSettings(maxLagChanges: 10, maxLagMillis: 50))
        m.on(.start, now: 0)
        m.on(.prepared(positions: [:]), now: 0)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 0, done: true), now: 0) }
        let sources = m.plan.sources
        m.on(.tailed(.forward, shard: sources[0], position: 5, backlog: 11, lagMillis: 0), now: 1)
        #expect(m.phase == .catchingUp)
        for source in sources { m.on(.tailed(.forward, shard: source, position: 6, backlog: 3, lagMillis: 51), now: 2) }
        #expect(m.phase == .catchingUp)
        for source in sources { m.on(.tailed(.forward, shard: source, position: 7, backlog: 3, lagMillis: 20), now: 3) }
        #expect(m.phase == .verifying)
    }

    @Test func aMismatchFailsTheMigrationAndRollbackDeletesTheCopies() throws {
        var m = try machine()
        m.on(.start, now: 0)
        m.on(.prepared(positions: [:]), now: 0)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 0, done: true), now: 0) }
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 1, backlog: 0, lagMillis: 0), now: 1) }
        var report = VerificationReport(at: 2)
        report.unresolved = ["t [0x…) sub-range 3: 1 row missing on target"]
        m.on(.verified(report), now: 2)
        #expect(m.phase == .failed)
        #expect(m.work(now: 2).isEmpty)
        #expect(m.on(.rollback, now: 3) == .accepted)
        #expect(m.phase == .rollingBack)
        #expect(m.work(now: 3).allSatisfy { if case .deleteChunk(_, shard("s3"), _, _) = $0 { true } else { false } })
        for index in m.deletions.indices { m.on(.chunkDeleted(task: index, rows: 0, done: true), now: 4) }
        #expect(m.work(now: 4) == [.finish(purgeThrough: m.forward.mapValues(\.position))])
        m.on(.finished, now: 5)
        #expect(m.phase == .rolledBack)
    }

    @Test func rollbackBeforeTheSwitchUnfencesThenReleases() throws {
        var m = try machine()
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [:]), now: 4)
        #expect(m.on(.rollback, now: 5) == .accepted)
        #expect(m.work(now: 5) == [.removeFences(m.ranges(byOwner: .forward))])
        m.on(.fencesRemoved, now: 6)
        #expect(m.work(now: 6) == [.releaseWrites])
        m.on(.writesReleased, now: 7)
        #expect(m.rollback == .deleteCopies)
        #expect(!m.holding && !m.sourcesFenced)
    }

    @Test func rollbackAfterTheSwitchRunsTheCutoverBackwards() throws {
        var m = try machine()
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [shard("s3"): 50]), now: 4)
        m.on(.published, now: 5)
        m.on(.writesReleased, now: 6)
        #expect(m.phase == .baking)
        m.on(.tailed(.reverse, shard: shard("s3"), position: 60, backlog: 0, lagMillis: 0), now: 7)
        #expect(m.on(.rollback, now: 8) == .accepted)
        #expect(m.work(now: 8).contains(.holdWrites(m.plan.moves.map(\.range), generation: m.rollbackGeneration)))
        #expect(m.work(now: 8).contains(.tail(.reverse, shard: shard("s3"), after: 60, through: nil)))
        m.on(.writesHeld, now: 9)
        #expect(
            m.work(now: 9).contains(
                .fence(m.ranges(byOwner: .reverse), generation: 3, readPositions: Array(Set(m.plan.sources + m.plan.targets)).sorted())))
        m.on(.fenced(positions: [shard("s3"): 70]), now: 10)
        #expect(m.work(now: 10) == [.tail(.reverse, shard: shard("s3"), after: 60, through: 70)])
        m.on(.tailed(.reverse, shard: shard("s3"), position: 70, backlog: 0, lagMillis: 0), now: 11)
        #expect(m.work(now: 11) == [.publish(m.plan.source.withGeneration(3))])
        m.on(.published, now: 12)
        #expect(!m.switched)
        m.on(.writesReleased, now: 13)
        #expect(m.rollback == .deleteCopies)
        #expect(m.deletions.allSatisfy { $0.shard == shard("s3") })
    }

    @Test func aCrashDuringCutoverStartsItOverFromTheHold() throws {
        var m = try machine()
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [:]), now: 4)
        m.on(.restarted(publishedGeneration: nil), now: 5)
        #expect(m.holding, "the hold in the routers' directive outlives the process; only a release clears it")
        #expect(m.sourcesFenced)
        // A restarted migrator shows its canary again (nil here: a dead one may have left one).
        #expect(m.work(now: 5).first == .showRoutes(nil))
        #expect(m.phaseWork(now: 5) == [.holdWrites(m.plan.moves.map(\.range), generation: m.plan.target.generation)])
        // A crash after the switch but before the release needs no new hold: the map is out.
        m.on(.writesHeld, now: 6)
        m.on(.fenced(positions: [:]), now: 7)
        m.on(.published, now: 8)
        m.on(.restarted(publishedGeneration: nil), now: 9)
        #expect(m.phaseWork(now: 9) == [.releaseWrites])
        m.on(.writesReleased, now: 10)
        #expect(m.phase == .baking)
    }

    /// Found by the simulation: a rollback that found writes held, journaled by its command, then
    /// a crash. The restarted machine thought the hold had died with the process and went on to
    /// delete the copies, leaving every other router holding writes to the moving ranges for ever.
    @Test func aRollbackAfterACrashStillReleasesTheHoldItFound() throws {
        var m = try machine()
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        #expect(m.on(.rollback, now: 4) == .accepted)
        let journaled = m  // a command is journaled even while writes are held
        var restarted = journaled
        restarted.on(.restarted(publishedGeneration: m.plan.source.generation), now: 5)
        #expect(restarted.phaseWork(now: 5) == [.removeFences(m.ranges(byOwner: .forward))])
        restarted.on(.fencesRemoved, now: 6)
        #expect(restarted.phaseWork(now: 6) == [.releaseWrites])
        restarted.on(.writesReleased, now: 7)
        #expect(restarted.rollback == .deleteCopies && !restarted.holding)
    }

    @Test func anAbortedCutoverUnfencesReleasesAndTriesAgain() throws {
        var m = try machine(settings: MigrationSettings(maxCutoverAttempts: 2))
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [:]), now: 4)
        // Writes held at 3 may stay held through the budget, not a millisecond longer.
        m.on(.tick, now: 3 + m.settings.cutoverBudget)
        #expect(m.phase == .cuttingOver)
        m.on(.tick, now: 4 + m.settings.cutoverBudget)
        #expect(m.phase == .catchingUp)
        #expect(m.work(now: 5) == [.removeFences(m.ranges(byOwner: .forward))])
        m.on(.fencesRemoved, now: 6)
        #expect(m.work(now: 6) == [.releaseWrites])
        m.on(.writesReleased, now: 7)
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 30, backlog: 0, lagMillis: 0), now: 8) }
        #expect(m.phase == .verifying)
        m.on(.verified(Self.cleanReport), now: 9)
        #expect(m.cutoverAttempts == 2)
        m.on(.writesHeld, now: 10)
        _ = m.nextRound(now: 11 + m.settings.cutoverBudget)
        #expect(m.phase == .failed)
    }

    @Test func operatorCommandsOutsideTheirPhasesAreRejected() throws {
        var m = try machine()
        #expect(m.on(.pause, now: 0) != .accepted)
        #expect(m.on(.resume, now: 0) != .accepted)
        m.on(.start, now: 0)
        #expect(m.on(.start, now: 0) != .accepted)
        m.on(.prepared(positions: [:]), now: 0)
        #expect(m.on(.pause, now: 1) == .accepted)
        #expect(m.phase == .paused)
        #expect(m.work(now: 1).isEmpty)
        #expect(m.on(.pause, now: 1) != .accepted)
        #expect(m.on(.resume, now: 2) == .accepted)
        #expect(m.phase == .copying)
    }

    @Test func aRepeatedFenceNeverMovesTheReverseStartLater() throws {
        // The map was published but the crash lost that event: clients already write to the new
        // owner, so the repeated fence must not skip their changes when reverse replication starts.
        var m = try machine()
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [shard("s3"): 50]), now: 4)
        m.on(.restarted(publishedGeneration: nil), now: 5)
        m.on(.writesHeld, now: 6)
        m.on(.fenced(positions: [shard("s3"): 80]), now: 7)
        #expect(m.reverse[shard("s3")]?.position == 50)
    }
}

extension MigrationStateMachineTests {
    @Test func aFailureMidCutoverTakesTheFencesOffAndReleasesTheWrites() throws {
        var m = try machine()
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [:]), now: 4)
        m.on(.failed(reason: "shard s1 unreachable"), now: 5)
        #expect(m.phase == .failed)
        #expect(m.work(now: 5) == [.removeFences(m.ranges(byOwner: .forward))])
        m.on(.fencesRemoved, now: 6)
        #expect(m.work(now: 6) == [.releaseWrites])
        m.on(.writesReleased, now: 7)
        #expect(m.work(now: 7).isEmpty)
        #expect(m.phase == .failed)
        // Resuming starts the cutover over from the hold.
        #expect(m.on(.resume, now: 8) == .accepted)
        #expect(m.work(now: 8) == [.holdWrites(m.plan.moves.map(\.range), generation: m.plan.target.generation)])
    }
}

extension MigrationStateMachineTests {
    @Test func aFailureBeforeTheSwitchClosesItsStreamsAfterTheRetentionAndResumeCopiesAgain() throws {
        var m = try machine(settings: MigrationSettings(bakeMillis: 100, failedStreamRetentionMillis: 1_000))
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        m.on(.chunkCopied(task: 0, last: ScanCursor(hash: 1, pk: "a"), rows: 10, done: false), now: 1)
        m.on(.failed(reason: "shard s1 unreachable"), now: 10)
        // Within the retention a resume would continue where it stopped: the streams stay.
        #expect(m.work(now: 500).isEmpty)
        #expect(m.work(now: 1_010) == [.closeStreams])
        m.on(.streamsClosed, now: 1_010)
        #expect(m.forward.isEmpty && m.streamsReleased == true)
        #expect(m.work(now: 2_000).isEmpty)
        // A cleanup step failing now keeps the reason the migration failed for.
        m.on(.failed(reason: "could not close every change stream"), now: 2_001)
        #expect(m.failure == "shard s1 unreachable")
        // Changes made since were captured nowhere: resuming opens the streams and copies again.
        #expect(m.on(.resume, now: 3_000) == .accepted)
        #expect(m.phase == .preparing)
        #expect(m.copies.allSatisfy { !$0.done && $0.cursor == nil })
        #expect(m.work(now: 3_000) == [.prepare(sources: m.plan.sources, targets: [shard("s3")])])
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 9) })), now: 3_001)
        #expect(m.phase == .copying && m.streamsReleased == nil)
        #expect(m.forward.values.allSatisfy { $0.position == 9 })
    }

    @Test func aRollbackThatFailedBeforeTheSwitchResumesAsARollbackWithoutItsStreams() throws {
        var m = try machine(settings: MigrationSettings(bakeMillis: 100, failedStreamRetentionMillis: 0))
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        #expect(m.on(.rollback, now: 1) == .accepted)
        #expect(m.phase == .rollingBack && m.rollback == .deleteCopies)
        m.on(.failed(reason: "shard s3 unreachable"), now: 2)
        #expect(m.work(now: 2) == [.closeStreams])
        m.on(.streamsClosed, now: 2)
        #expect(m.on(.resume, now: 3) == .accepted)
        #expect(m.phase == .rollingBack && m.rollback == .deleteCopies)
        #expect(m.work(now: 3).allSatisfy { if case .deleteChunk = $0 { true } else { false } })
    }

    @Test func aFailureAfterTheSwitchKeepsTheStreamsReverseReplicationNeeds() throws {
        var m = try machine(settings: MigrationSettings(bakeMillis: 100_000, failedStreamRetentionMillis: 0))
        toCutover(&m)
        m.on(.writesHeld, now: 3)
        m.on(.fenced(positions: [:]), now: 4)
        m.on(.published, now: 5)
        m.on(.writesReleased, now: 6)
        #expect(m.phase == .baking)
        m.on(.failed(reason: "shard s3 unreachable"), now: 7)
        #expect(!m.work(now: 1_000_000).contains(.closeStreams))
    }
}
