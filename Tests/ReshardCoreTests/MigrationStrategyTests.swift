import Testing

@testable import ReshardCore

/// A strategy is a table of phases: its order, its router modes, and the phases a machine of
/// each strategy walks.
@Suite struct MigrationStrategyTests {
    @Test func cdcBackfillIsTheDefaultAndItsTableIsDesignsPhaseOrder() {
        #expect(MigrationSettings().strategyInForce == .cdcBackfill)
        let phases = MigrationStrategy.cdcBackfill.steps.map(\.phase)
        #expect(phases == [.preparing, .copying, .catchingUp, .verifying, .canary, .cuttingOver, .baking, .cleaningUp])
        #expect(MigrationStrategy.cdcBackfill.steps.allSatisfy { $0.routes == .unchanged }, "routers route by the map throughout")
    }

    @Test func dualWriteWritesBothOwnersFromDualWritingThroughTheSwitch() {
        let dual = MigrationStrategy.dualWrite
        #expect(
            dual.steps.map(\.phase) == [
                .preparing, .dualWriting, .copying, .catchingUp, .verifying, .canary, .cuttingOver, .baking, .cleaningUp,
            ])
        let writing = dual.steps.filter { $0.routes == .dualWrites }.map(\.phase)
        #expect(writing == [.dualWriting, .copying, .catchingUp, .canary], "from dual_writing to the switch, but for the comparison")
        #expect(dual.step(.verifying)?.settles == true && dual.step(.dualWriting)?.settles == true)
        #expect(dual.steps.allSatisfy { $0.routes.reads == .owner }, "reads stay on the map's owner until the switch")
    }

    @Test(arguments: MigrationStrategy.allCases.filter(\.isAvailable))
    func everyStepSaysWhatItDoesAndWhenItEnds(strategy: MigrationStrategy) {
        for step in strategy.steps {
            #expect(!step.does.isEmpty && !step.until.isEmpty, "\(strategy) \(step.phase) says what it does and when it ends")
            #expect(!step.phase.isTerminal && ![.paused, .failed, .rollingBack, .planned].contains(step.phase))
        }
        #expect(Set(strategy.steps.map(\.phase)).count == strategy.steps.count, "no phase twice")
        #expect(strategy.steps.last?.phase == .cleaningUp && strategy.steps.first?.phase == .preparing)
    }

    @Test func theNextPhaseFollowsTheTableAndSkipsWhatIsLeftOut() {
        let cdc = MigrationStrategy.cdcBackfill
        #expect(cdc.phase(after: .verifying) == .canary)
        #expect(cdc.phase(after: .verifying, skip: [.canary]) == .cuttingOver)
        #expect(cdc.phase(after: .cleaningUp) == nil, "after the last phase the migration is done")
        #expect(cdc.phase(after: .paused) == nil, "a phase outside the table has no successor")
    }

    @Test func onlyStrategiesWithATableAreAvailable() {
        for strategy in MigrationStrategy.allCases {
            #expect(strategy.isAvailable == !strategy.steps.isEmpty)
        }
        #expect(MigrationStrategy.cdcBackfill.isAvailable)
        #expect(MigrationStrategy(rawValue: "dual_write") == .dualWrite)
    }

    @Test func aDualWriteMigrationShowsItsModeAndCopiesOnlyOnceRoutersHadTimeToFollowIt() throws {
        let m0 = try MigrationStateMachineTests().machine(settings: MigrationSettings(bakeMillis: 100, strategy: .dualWrite))
        var m = m0
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 10)
        #expect(m.phase == .dualWriting)
        let directive = try #require(m.routeDirective)
        #expect(directive.routes == .dualWrites && directive.shadowPercent == 0 && directive.migration == m.id)
        let first = m.nextRound(now: 10)
        #expect(first.first == .showRoutes(directive), "the mode is shown first")
        #expect(first.contains { if case .tail(.forward, _, 5, nil) = $0 { true } else { false } }, "the changelog is read meanwhile")
        m.on(.tick, now: 10 + MigrationPacing.routerFollowMillis)
        #expect(m.phase == .dualWriting, "not shown yet: routers cannot have followed it")
        m.finish(round: [.routesShown(directive)], now: 20)
        #expect(m.work(now: 21).last == .waitUntil(20 + MigrationPacing.routerFollowMillis), "two re-reads from the showing")
        m.on(.tick, now: 20 + MigrationPacing.routerFollowMillis - 1)
        #expect(m.phase == .dualWriting)
        m.on(.tick, now: 20 + MigrationPacing.routerFollowMillis)
        #expect(m.phase == .copying)
        #expect(m.routeDirective == directive, "copying keeps writing both owners")
        #expect(m.routeSync.isEmpty)

        // A restart shows the mode again: the process that died may have changed the directive.
        var restarted = m
        restarted.on(.restarted(publishedGeneration: 1), now: 3_000)
        #expect(restarted.nextRound(now: 3_000).first == .showRoutes(directive))

        // A pause keeps the mode; a failure before the switch drops it.
        var paused = m
        paused.on(.chunkCopied(task: 0, last: nil, rows: 1, done: false), now: 3_000)
        #expect(paused.on(.pause, now: 3_000) == .accepted)
        #expect(paused.routeDirective == directive)
        var failed = m
        failed.on(.failed(reason: "test"), now: 3_000)
        #expect(failed.routeDirective == nil)
        #expect(failed.nextRound(now: 3_000).first == .showRoutes(nil))
    }

    @Test func secondWritesPauseWhileVerifyingAndEndBeforeTheSwitch() throws {
        var m = try MigrationStateMachineTests().machine(settings: MigrationSettings(bakeMillis: 100, strategy: .dualWrite))
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        let directive = try #require(m.routeDirective)
        m.on(.routesShown(directive), now: 0)
        m.on(.tick, now: MigrationPacing.routerFollowMillis)
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 2_000) }
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 9, backlog: 0, lagMillis: 0), now: 2_001) }
        #expect(m.phase == .verifying)
        #expect(m.routeDirective == nil)
        let pause = m.nextRound(now: 2_001)
        #expect(pause.first == .showRoutes(nil) && !pause.contains { if case .verify = $0 { true } else { false } })
        m.finish(round: [.routesShown(nil)], now: 2_001)
        #expect(m.work(now: 2_001 + MigrationPacing.routerFollowMillis - 1).last == .waitUntil(2_001 + MigrationPacing.routerFollowMillis))
        #expect(m.work(now: 2_001 + MigrationPacing.routerFollowMillis) == [.verify(m.verificationRequest)])
        m.on(.verified(MigrationStateMachineTests.cleanReport), now: 4_002)
        #expect(m.phase == .cuttingOver)
        #expect(m.routeSync.isEmpty, "the critical section writes no directive of its own")
        m.on(.writesHeld, now: 4_003)
        m.on(.fenced(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 9) })), now: 4_004)
        m.on(.published, now: 4_005)
        m.on(.writesReleased, now: 4_006)
        #expect(m.phase == .baking)
        #expect(m.routeDirective == nil && m.routeSync.isEmpty)
    }

    @Test func failedSecondWritesAreRetriedAboutOnceASecondWithABackoffAndFlaggedWhenRetriesKeepFailing() throws {
        var m = try MigrationStateMachineTests().machine(settings: MigrationSettings(bakeMillis: 100, strategy: .dualWrite))
        let retry = MigrationWork.retrySecondWrites(limit: MigrationPacing.secondWriteRetryBatch)
        m.on(.start, now: 0)
        #expect(!m.nextRound(now: 0).contains(retry), "nothing to retry before dual writes")
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        #expect(m.nextRound(now: 1).contains(retry))
        #expect(!m.nextRound(now: 2).contains(retry), "one pass at a time")
        m.finish(round: [.secondWritesRetried(applied: 0, waiting: 0, error: nil)], now: 2)
        #expect(!m.nextRound(now: 500).contains(retry), "an empty queue is looked at about once a second")
        #expect(m.nextRound(now: 1_002).contains(retry))
        m.finish(round: [.secondWritesRetried(applied: 3, waiting: 7, error: nil)], now: 1_010)
        #expect(m.nextRound(now: 1_010).contains(retry), "a pass that left entries and succeeded goes on at once")
        var now: UInt64 = 1_010
        for pass in 1...MigrationPacing.secondWriteReconcileAfter {
            m.finish(round: [.secondWritesRetried(applied: 0, waiting: 7, error: "down")], now: now)
            let queue = try #require(m.pacing?.secondWrites)
            #expect(queue.needsReconciliation == (pass >= MigrationPacing.secondWriteReconcileAfter))
            #expect(queue.nextAt == now + min(30_000, 250 << UInt64(pass)), "the backoff doubles")
            #expect(!m.nextRound(now: queue.nextAt - 1).contains(retry))
            now = queue.nextAt
            #expect(m.nextRound(now: now).contains(retry))
        }
        #expect(m.pacing?.secondWrites.retried == 3 && m.stepError == nil, "a failed pass is the queue's, not the migration's")
        m.finish(round: [.secondWritesRetried(applied: 7, waiting: 0, error: nil)], now: now)
        #expect(m.pacing?.secondWrites.needsReconciliation == false)
        // cdc_backfill never retries second writes.
        var plain = try MigrationStateMachineTests().machine()
        plain.on(.start, now: 0)
        plain.on(.prepared(positions: Dictionary(uniqueKeysWithValues: plain.plan.sources.map { ($0, 5) })), now: 0)
        #expect(!plain.nextRound(now: 1).contains(retry))
    }

    @Test func trafficReplayRecordsFromRecordingAndCatchesUpOnlyWhenTheReplayHas() throws {
        let replay = MigrationStrategy.trafficReplay
        #expect(
            replay.steps.map(\.phase) == [
                .preparing, .recording, .copying, .catchingUp, .verifying, .canary, .cuttingOver, .baking, .cleaningUp,
            ])
        #expect(
            replay.steps.filter { $0.routes == .recordWrites }.map(\.phase) == [.recording, .copying, .catchingUp, .verifying, .canary])
        #expect(replay.records && !replay.writesSecond && replay.step(.recording)?.settles == true)

        var m = try MigrationStateMachineTests().machine(
            settings: MigrationSettings(maxLagChanges: 5, bakeMillis: 100, strategy: .trafficReplay))
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        #expect(m.phase == .recording && m.routeDirective?.routes == .recordWrites)
        m.on(.routesShown(m.routeDirective), now: 10)
        m.on(.tick, now: 10 + MigrationPacing.routerFollowMillis)
        #expect(m.phase == .copying)
        #expect(!m.work(now: 2_010).contains { if case .replay = $0 { true } else { false } }, "no replay before the backfill ends")
        for task in m.copies.indices { m.on(.chunkCopied(task: task, last: nil, rows: 1, done: true), now: 2_020) }
        #expect(m.phase == .catchingUp)
        #expect(m.work(now: 2_020).contains(.replay(after: 0, limit: MigrationPacing.replayBatch)))
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 9, backlog: 0, lagMillis: 0), now: 2_030) }
        #expect(m.phase == .catchingUp, "the changelog caught up, the replay not read yet")
        m.finish(round: [.replayed(through: 800, applied: 800, waiting: 40)], now: 2_040)
        #expect(m.phase == .catchingUp && m.replayed == ReplayProgress(position: 800, applied: 800))
        #expect(m.work(now: 2_040).contains(.replay(after: 800, limit: MigrationPacing.replayBatch)), "replays on from where it stopped")
        m.finish(round: [.replayed(through: 600, applied: 9, waiting: 0)], now: 2_045)
        #expect(m.replayed == ReplayProgress(position: 800, applied: 800), "an older report changes nothing")
        m.finish(round: [.replayed(through: 840, applied: 40, waiting: 3)], now: 2_050)
        #expect(m.phase == .verifying, "both within max_lag_changes")
        #expect(!m.work(now: 2_050).contains { if case .replay = $0 { true } else { false } }, "no replay while comparing")
        // A restart must read the replay again before it counts as caught up.
        var restarted = m
        restarted.on(.restarted(publishedGeneration: 1), now: 2_060)
        #expect(restarted.pacing?.replayWaiting == nil && restarted.replayed?.position == 840)
        // Verified after that restart: the replay is read again (it alone can tell its backlog),
        // and the migration goes on once it is within the threshold. (Seeds 4 and 14 of the
        // rebalance simulation stood in `verifying` for ever here.)
        for source in restarted.plan.sources {
            restarted.on(.tailed(.forward, shard: source, position: 10, backlog: 0, lagMillis: 0), now: 2_070)
        }
        restarted.on(.verified(VerificationReport(at: 2_070)), now: 2_080)
        #expect(restarted.phase == .verifying)
        #expect(restarted.work(now: 2_080).contains(.replay(after: 840, limit: MigrationPacing.replayBatch)))
        restarted.finish(round: [.replayed(through: 850, applied: 10, waiting: 0)], now: 2_090)
        #expect(restarted.phase == .cuttingOver, "(this machine has no canary steps)")
    }

    /// The phase log keeps 64 entries; a dual-write migration paused and resumed more often
    /// than that has forgotten its `dual_writing`, and its rollback must still fence the copies.
    /// `write_new_read_old` and `routing_first`: the modes are shown and settle before the hold,
    /// the copy runs after the switch with reverse replication (no forward tails: the old owners
    /// are fenced), verification runs the other way at the new owners' positions, and reads move
    /// to the new owners alone (no directive) only once verified; the bake is timed from there.
    @Test(arguments: [MigrationStrategy.writeNewReadOld, .routingFirst])
    func theStrategiesThatSwitchFirstShowTheirModesBeforeTheSwitchAndKeepThemUntilVerified(strategy: MigrationStrategy) throws {
        #expect(strategy.switchesFirst && !MigrationStrategy.dualWrite.switchesFirst && !MigrationStrategy.cdcBackfill.switchesFirst)
        var m = try MigrationStateMachineTests().machine(settings: MigrationSettings(bakeMillis: 100, strategy: strategy))
        let modes: RouteModes = strategy == .routingFirst ? .redirectedReads : .newestReads
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 10)
        #expect(m.phase == .catchingUp)
        let directive = try #require(m.routeDirective)
        #expect(directive.routes == modes)
        #expect(m.nextRound(now: 10).first == .showRoutes(directive))
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 6, backlog: 0, lagMillis: 0), now: 11) }
        #expect(m.phase == .catchingUp, "caught up, but the modes are not shown yet")
        m.finish(round: [.routesShown(directive)], now: 20)
        m.on(.tick, now: 20 + MigrationPacing.routerFollowMillis - 1)
        #expect(m.phase == .catchingUp, "shown, but routers may not have followed")
        m.on(.tick, now: 20 + MigrationPacing.routerFollowMillis)
        #expect(m.phase == .cuttingOver && m.routeDirective == directive, "the hold keeps the modes: the switch is inside it")

        let t = 20 + MigrationPacing.routerFollowMillis
        m.on(.writesHeld, now: t)
        var positions = Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, UInt64(6)) })
        for target in m.plan.targets { positions[target] = 30 }
        m.on(.fenced(positions: positions), now: t)
        m.on(.published, now: t + 1)
        m.on(.writesReleased, now: t + 2)
        #expect(m.switched && m.phase == .copying && m.bakeUntil == nil)
        #expect(m.routeDirective == directive, "the new owners lack rows: the modes stay")
        let copying = m.work(now: t + 2)
        #expect(copying.contains { if case .copyChunk = $0 { true } else { false } })
        #expect(!copying.contains { if case .tail(.forward, _, _, _) = $0 { true } else { false } })
        #expect(copying.contains(.tail(.reverse, shard: m.plan.targets[0], after: 30, through: nil)))

        // A failure or a pause keeps the modes; so does a rollback until it has switched back.
        var failed = m
        failed.on(.failed(reason: "test"), now: t + 3)
        #expect(failed.routeDirective == directive)
        var rolling = m
        #expect(rolling.on(.rollback, now: t + 3) == .accepted)
        #expect(rolling.phase == .rollingBack && rolling.routeDirective == directive)

        for index in m.copies.indices { m.on(.chunkCopied(task: index, last: nil, rows: 1, done: true), now: t + 4) }
        #expect(m.phase == .verifying && m.routeDirective == directive)
        let request = m.verificationRequest
        #expect(request.afterSwitch && request.positions == [m.plan.targets[0]: 30])
        var report = VerificationReport(at: t + 5)
        report.positions = [m.plan.targets[0]: 42]
        m.on(.verified(report), now: t + 5)
        #expect(m.phase == .baking && m.bakeUntil == t + 5 + 100, "the bake is timed from the verification")
        #expect(m.reverse[m.plan.targets[0]]?.position == 42, "the verification drained reverse replication")
        #expect(m.routeDirective == nil, "verified: reads move to the new owners alone")
        #expect(m.phaseLog.map(\.phase) == strategy.steps.map(\.phase).filter { $0 != .servingReads }.prefix(6).map { $0 })
    }

    @Test func aDualWriteRollbackFencesTheCopiesHoweverLongAgoDualWritesBegan() throws {
        var m = try MigrationStateMachineTests().machine(settings: MigrationSettings(bakeMillis: 100, strategy: .dualWrite))
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 0)
        m.on(.routesShown(m.routeDirective), now: 0)
        m.on(.tick, now: MigrationPacing.routerFollowMillis)
        #expect(m.phase == .copying)
        for cycle in 0..<40 {
            #expect(m.on(.pause, now: 3_000 + UInt64(cycle)) == .accepted)
            #expect(m.on(.resume, now: 3_000 + UInt64(cycle)) == .accepted)
        }
        #expect(!m.phaseLog.contains { $0.phase == .dualWriting }, "the log has forgotten dual_writing")
        #expect(m.on(.rollback, now: 4_000) == .accepted)
        #expect(m.rollback == .fenceCopies)
        #expect(m.work(now: 4_000).contains(.fence(m.ranges(byOwner: .reverse), generation: m.plan.target.generation, readPositions: [])))
    }
}

/// Verification after a switch that came first repairs toward the newer version on either side
/// and never deletes: the new owner (`source`) takes client writes, the old one (`target`) is fed
/// by reverse replication, and a row only the old owner has is one not copied yet.
@Suite struct RepairAfterSwitchTests {
    let table = TableName("t")!
    func row(_ version: UInt64, _ body: String? = "{}") -> StoredRow {
        StoredRow(table: table, pk: "k", shardKey: "k", version: version, body: body)
    }

    @Test func theNewerSideWinsAndNothingIsDeleted() {
        func repair(_ source: StoredRow?, _ target: StoredRow?) -> (RepairAction, Bool)? {
            guard let kind = RowDiff.classify(source: source, target: target) else { return nil }
            let difference = RowDifference(table: table, pk: "k", kind: kind, source: source, target: target)
            return difference.repairAfterSwitch
        }
        // Only the old owner has it, or has it newer: onto the new owner, by the version rule.
        #expect(repair(nil, row(5))! == (.apply(row(5)), true))
        #expect(repair(row(3), row(5))! == (.apply(row(5)), true))
        #expect(repair(row(3), row(5, nil))! == (.apply(row(5, nil)), true), "a tombstone travels too")
        // Only the new owner has it, or has it newer: onto the old owner.
        #expect(repair(row(5), nil)! == (.apply(row(5)), false))
        #expect(repair(row(5), row(3))! == (.apply(row(5)), false))
        // Same version, other content: the old owner takes no client writes, so it is overwritten.
        #expect(repair(row(5), row(5, "{\"x\":1}"))! == (.overwrite(row(5)), false))
        #expect(repair(row(5), row(5)) == nil)
        for source in [nil, row(1), row(9)] {
            for target in [nil, row(1), row(9, nil)] {
                if let (action, _) = repair(source, target), case .remove = action { Issue.record("deleted \(target as Any)") }
            }
        }
    }
}
