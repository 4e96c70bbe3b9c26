extension MigrationStateMachine {
    /// Moves to the next phase when the current one's exit criteria hold.
    mutating func advance(now: UInt64) {
        switch phase {
        case .preparing where !forward.isEmpty:
            proceedToNext(now: now)
        case .dualWriting where routesSettled(now: now), .recording where routesSettled(now: now):
            proceedToNext(now: now)
        case .copying where copies.allSatisfy(\.done):
            proceedToNext(now: now)
        case .catchingUp where !holding && !sourcesFenced && caughtUp && !settling(now: now):
            proceedToNext(now: now)
        case .verifying where verified && (switched || caughtUp):
            proceedToNext(now: now)
        case .canary, .servingReads:
            advanceCanary(now: now)
        case .cuttingOver:
            // The pause must stay short: past the budget the writes go back to the old owners and
            // the cutover is tried again after catching up.
            if !switched, let held = cutover?.heldAt, now > held.adding(saturating: settings.cutoverBudget) {
                abortCutover(reason: "writes held over \(settings.cutoverBudget) ms")
                return
            }
            advanceDrain()
        case .baking where now >= (bakeUntil ?? 0):
            proceedToNext(now: now)
        case .rollingBack:
            let before = (rollback, cutover)
            advanceRollback()
            if before != (rollback, cutover) { advance(now: now) }
        default:
            break
        }
    }

    /// The phase after the current one in the strategy's table: a canary without steps, or one
    /// that passed before an aborted cutover, is not run (again).
    var nextPhase: MigrationPhase {
        var skip = plan.skippedPhases
        if canaryPassed || settings.canarySteps.isEmpty { skip.insert(.canary) }
        if settings.readStepsInForce.isEmpty { skip.insert(.servingReads) }
        return settings.strategyInForce.phase(after: phase, skip: skip) ?? .done
    }

    /// Enters the next phase of the strategy's table (see `proceed(to:now:)`).
    mutating func proceedToNext(now: UInt64) { proceed(to: nextPhase, now: now) }

    /// Enters `next` with its entry actions, unless `next` is gated and not approved yet: then the
    /// machine stays where it is and records what it waits for.
    mutating func proceed(to next: MigrationPhase, now: UInt64) {
        if settings.gates.contains(next) && !approved.contains(next) {
            if awaitingApproval != next {
                awaitingApproval = next
                awaitingSince = now
            }
            return
        }
        awaitingApproval = nil
        awaitingSince = nil
        switch next {
        case .catchingUp:
            phase = .catchingUp
            // Backlogs read while copying are stale: catching up needs a fresh read of each source.
            for source in plan.sources { forward[source]?.backlog = .max }
            pacing?.replayWaiting = nil
        case .verifying:
            phase = .verifying
            verified = false
        case .canary:
            phase = .canary
            canary = CanaryProgress(step: 0, since: now, startedAt: now)
            canaryPassed = false
        case .servingReads:
            phase = .servingReads
            canary = CanaryProgress(step: 0, since: now, startedAt: now)
        case .cuttingOver:
            beginCutover(now: now)
        case .baking:
            phase = .baking
            bakeUntil = now.adding(saturating: settings.bakeMillis)
        case .cleaningUp:
            // The point of no return: from here the old owners lose the moved rows and reverse
            // replication stops, so rollback is no longer offered.
            phase = .cleaningUp
            prepareDeletions(from: .forward)
            preparePurges(now: now)
        default:
            phase = next
        }
    }

    /// The routers' directive says what it should, and has said it for long enough that every
    /// router following the metadata re-read it. (What a router that had not yet followed did
    /// is still safe, carried by the changelog or tolerated by verification; this wait makes it
    /// rare, not safe.)
    func routesSettled(now: UInt64) -> Bool {
        routesStale != true && routesShown == routeDirective.map(RouteDirective.Shown.init) && routesShownAt != nil
            && now >= routesSettleAt(now: now)
    }

    /// When the routes shown settle (now, when they are not shown yet: the next round shows them).
    func routesSettleAt(now: UInt64) -> UInt64 {
        routesShownAt.map { $0.adding(saturating: settings.routerFollow) } ?? now
    }

    /// The wait for the routes to settle, once they are shown (until then the round shows them).
    var settleWait: [MigrationWork] {
        routeSync.isEmpty ? routesShownAt.map { [.waitUntil($0.adding(saturating: settings.routerFollow))] } ?? [] : []
    }

    /// Whether the current step's work waits for its routes to settle.
    func settling(now: UInt64) -> Bool {
        settings.strategyInForce.step(phase)?.settles == true && !routesSettled(now: now)
    }

    /// The next replay of recorded writes (`traffic_replay`), after the backfill.
    var replayWork: [MigrationWork] {
        settings.strategyInForce.records ? [.replay(after: replayed?.position ?? 0, limit: MigrationPacing.replayBatch)] : []
    }

    /// Every old owner's changelog is applied to within the lag thresholds, and so is the replay
    /// log of a strategy that records writes.
    var caughtUp: Bool {
        if settings.strategyInForce.records, (pacing?.replayWaiting ?? .max) > settings.maxLagChanges { return false }
        return plan.sources.allSatisfy { source in
            guard let stream = forward[source] else { return false }
            return stream.backlog <= settings.maxLagChanges && stream.lagMillis <= settings.maxLagMillis
        }
    }

    /// What is due now, before pacing (`nextRound` paces it). Items in the list may run
    /// concurrently; each one's result comes back as an event. Empty while waiting for an
    /// operator (planned, paused, failed) or when an ended migration has nothing left to tidy.
    public func work(now: UInt64) -> [MigrationWork] {
        routeSync + phaseWork(now: now)
    }

    func phaseWork(now: UInt64) -> [MigrationWork] {
        switch phase {
        case .planned, .paused:
            return []
        case .done, .rolledBack:
            // An ended migration no longer reads changes: its streams go (PostgreSQL slots pin WAL).
            return streamsReleased == true ? [] : [.closeStreams]
        case .failed:
            // A migration that failed before the switch must not leave its ranges fenced or its
            // writes held while it waits for an operator: clients would get 503s until then.
            if sourcesFenced && !switched { return removeFencesWork }
            if holding { return [.releaseWrites] }
            // Nor keep its change streams for ever: before the switch a rollback needs none (after
            // it, reverse replication), so past the retention they go.
            let failedAt = phaseLog.last { $0.phase == .failed }?.at ?? 0
            let retention = settings.failedStreamRetentionMillis ?? MigrationSettings.defaultFailedStreamRetentionMillis
            if !switched && !forward.isEmpty && streamsReleased != true && now >= failedAt.adding(saturating: retention) {
                return [.closeStreams]
            }
            return []
        default:
            break
        }
        // Rollback clears the wait; the guards keep a wait from ever stranding a hold or fences
        // set before the switch (gates are only entered where there are none).
        if awaitingApproval != nil, !holding, switched || !sourcesFenced {
            // Waiting for an operator: keep the other side current, poll for the approval.
            let tails = switched ? reverseTails() : (forward.isEmpty ? [] : forwardTails())
            return tails + [.waitUntil(now + 100)]
        }
        switch phase {
        case .planned, .paused, .done, .rolledBack, .failed:
            return []
        case .preparing:
            return [.prepare(sources: plan.sources, targets: plan.targets)]
        case .dualWriting, .recording:
            return forwardTails() + settleWait
        case .copying:
            // Several tasks per round: plans often have hundreds of small moves (a ring's arcs),
            // and one chunk per round would spend more time journaling than copying.
            let next = copies.indices.lazy.filter { !copies[$0].done }.prefix(settings.copyParallelism).map { index -> MigrationWork in
                let task = copies[index]
                let move = plan.moves[task.move]
                return .copyChunk(
                    task: index, move: task.slice.map { Move(range: $0, source: move.source, target: move.target) } ?? move,
                    table: task.table, after: task.cursor, limit: settings.chunkRows)
            }
            // After a switch that came first, the old owners take no client writes: reverse
            // replication keeps them current instead, so rollback stays possible.
            return Array(next) + (switched ? reverseTails() : forwardTails())
        case .catchingUp:
            if sourcesFenced { return removeFencesWork }
            if holding { return [.releaseWrites] }
            return forwardTails() + replayWork + (settling(now: now) ? settleWait : [])
        case .verifying:
            // A step that settles compares only once routers write as it says (no second write
            // may land on a new owner while it is compared).
            if settling(now: now) { return forwardTails() + settleWait }
            // Verified, but the changelog (or the replay log) ran ahead meanwhile: caught up again
            // before the switch. The replay's backlog is not journaled, so after a restart only a
            // replay can tell it again.
            if verified { return forwardTails() + replayWork }
            return [.verify(verificationRequest)]
        case .canary:
            return canaryWork(now: now) + replayWork
        case .servingReads:
            return canaryWork(now: now)
        case .cuttingOver:
            return cutoverWork()
        case .baking:
            return reverseTails() + [.waitUntil(bakeUntil ?? now)]
        case .cleaningUp:
            // Moved rows first: a purge must not race the deletion of the same shard's rows.
            let remaining = deletionWork()
            if !remaining.isEmpty { return remaining }
            let purging = purgeWork()
            return purging.isEmpty ? [.finish(purgeThrough: forward.mapValues(\.position))] : purging
        case .rollingBack:
            return rollbackWork()
        }
    }

    /// What a verification now compares, from where, and how hard it tries.
    public var verificationRequest: VerificationRequest {
        VerificationRequest(
            positions: (switched ? reverse : forward).mapValues(\.position), subranges: settings.verifySubranges,
            maxRepairPasses: settings.maxRepairPasses, checks: settings.checks, secondWrites: settings.strategyInForce.writesSecond,
            afterSwitch: switched)
    }

    func forwardTails() -> [MigrationWork] {
        plan.sources.map { .tail(.forward, shard: $0, after: forward[$0]?.position ?? 0, through: nil) }
    }

    func reverseTails() -> [MigrationWork] {
        plan.targets.map { .tail(.reverse, shard: $0, after: reverse[$0]?.position ?? 0, through: nil) }
    }

    mutating func preparePurges(now: UInt64) {
        let horizonMillis = now > settings.tombstoneGraceMillis ? now - settings.tombstoneGraceMillis : 0
        tombstoneHorizon = HybridLogicalClock.timestamp(millis: horizonMillis)
        purges = plan.target.shards.sorted().map { PurgeTask(shard: $0, rows: 0, done: false) }
    }

    func purgeWork() -> [MigrationWork] {
        guard let horizon = tombstoneHorizon, horizon > 0 else { return [] }
        return purges.indices.filter { !purges[$0].done }.map { index in
            .purgeTombstones(task: index, shard: purges[index].shard, before: horizon, limit: settings.cleanupChunkRows)
        }
    }

    func deletionWork() -> [MigrationWork] {
        deletions.indices.filter { !deletions[$0].done }.map { index in
            let task = deletions[index]
            if let table = task.table { return .clearTable(task: index, shard: task.shard, table: table, limit: settings.cleanupChunkRows) }
            return .deleteChunk(task: index, shard: task.shard, range: plan.moves[task.move].range, limit: settings.cleanupChunkRows)
        }
    }
}
