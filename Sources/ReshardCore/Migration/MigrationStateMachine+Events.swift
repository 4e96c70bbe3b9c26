extension MigrationStateMachine {
    /// Feeds one event at wall time `now`. Facts (copied chunks, applied changes) are recorded in
    /// any phase, because work in flight may finish after a pause or rollback began; operator
    /// commands that do not apply are rejected without changing anything; an event that cannot
    /// happen in the current step is a runner bug and stops the process.
    @discardableResult
    public mutating func on(_ event: MigrationEvent, now: UInt64) -> MigrationOutcome {
        let before = phase
        let outcome = handle(event, now: now)
        if phase != before {
            // Bounded: pause/resume cycles must not grow the journal without end.
            if phaseLog.count >= 64 { phaseLog.removeFirst(phaseLog.count - 63) }
            phaseLog.append(PhaseEntry(phase: phase, at: now))
        }
        return outcome
    }

    private mutating func handle(_ event: MigrationEvent, now: UInt64) -> MigrationOutcome {
        switch event {
        case .start:
            guard phase == .planned else { return .rejected("the migration already started (\(phase.rawValue))") }
            if let violation = settings.violation() { return .rejected("\(violation)") }
            if let refusal = plan.refusal(of: settings.strategyInForce) { return .rejected(refusal) }
            phase = .preparing
        case .prepared(let positions):
            precondition(phase == .preparing, "prepared in \(phase)")
            for source in plan.sources { forward[source] = StreamProgress(position: positions[source] ?? 0, backlog: 0, lagMillis: 0) }
        case .chunkCopied(let task, let last, let rows, let done, let bytes):
            precondition(copies.indices.contains(task), "no copy task \(task)")
            copies[task].rows += rows
            // Left nil until something is copied, so a journal that never copied reads as before.
            if bytes > 0 { copies[task].bytes = (copies[task].bytes ?? 0) + bytes }
            if let last { copies[task].cursor = last }
            copies[task].done = copies[task].done || done
        case .tailed(let direction, let shard, let position, let backlog, let lag):
            record(direction, shard: shard, position: position, backlog: backlog, lag: lag)
        case .verified(let report):
            precondition(phase == .verifying, "verified in \(phase)")
            // A verification that outlasted the lag allowed leaves the changes written meanwhile to
            // be read again: a cutover started on its stale figures would hold writes through them.
            let stale = report.micros / 1_000 > settings.maxLagMillis
            for (shard, position) in report.positions {
                record(switched ? .reverse : .forward, shard: shard, position: position, backlog: stale ? .max : 0, lag: 0)
            }
            verification = report
            verifications += 1
            if report.passed {
                verified = true
            } else {
                fail("verification left \(mismatches.count) difference(s) unresolved: \(mismatches.prefix(3).joined(separator: "; "))")
            }
        case .shadowMismatch(let description):
            // A report can arrive after the canary ended (a read in flight); only the canary halts.
            if phase == .canary {
                canaryPassed = false
                fail("shadow read mismatch: \(description)")
            }
        case .readsSentBack(let reason):
            // Only the phase that serves reads fails on it: a router's report can outlive it.
            if phase == .servingReads { fail("reads sent back to the old path: \(reason)") }
        case .shadowReadsChecked(let upTo):
            shadowReadsChecked(upTo: upTo)
        case .routesShown(let directive):
            let shown = directive.map(RouteDirective.Shown.init)
            if shown != routesShown || routesStale == true || routesShownAt == nil { routesShownAt = now }
            routesShown = shown
            routesStale = nil
        case .writesHeld, .fenced, .published, .writesReleased, .fencesRemoved:
            onCutoverStep(event, now: now)
        case .chunkDeleted(let task, let rows, let done):
            precondition(deletions.indices.contains(task), "no deletion task \(task)")
            deletions[task].rows += rows
            deletions[task].done = deletions[task].done || done
        case .streamsClosed:
            precondition((phase == .failed && !switched) || phase.isTerminal, "streams closed in \(phase)")
            streamsReleased = true
            if phase == .failed { forward = [:] }
        case .tombstonesPurged(let task, let rows, let done):
            precondition(purges.indices.contains(task), "no purge task \(task)")
            purges[task].rows += rows
            purges[task].done = purges[task].done || done
        case .finished:
            if phase == .cleaningUp {
                phase = nextPhase
            } else {
                precondition(phase == .rollingBack && rollback == .finish, "finished in \(phase)")
                phase = .rolledBack
                rollback = nil
            }
        case .replayed(let through, let applied, let waiting):
            var progress = replayed ?? ReplayProgress(position: 0, applied: 0)
            if through >= progress.position {
                progress.position = through
                progress.applied += applied
                replayed = progress
                var pacing = self.pacing ?? MigrationPacing(settings: settings)
                pacing.replayWaiting = waiting
                self.pacing = pacing
            }
        case .secondWritesRetried(let applied, let waiting, let error):
            var pacing = self.pacing ?? MigrationPacing(settings: settings)
            pacing.secondWrites.record(applied: applied, waiting: waiting, error: error, now: now)
            self.pacing = pacing
        case .tick:
            break
        case .stepFailed(let reason):
            stepFailed(reason, now: now)
        case .pause, .resume, .rollback, .approve:
            return onCommand(event, now: now)
        case .adjust(let adjustment):
            return adjust(adjustment, now: now)
        case .failed(let reason):
            guard !phase.isTerminal else { return .rejected("the migration has ended") }
            fail(reason)
        case .restarted(let published):
            if let published { reconcile(publishedGeneration: published) }
            restart(now: now)
            pacing = nil
            routesStale = true
            // A journal edited by hand, or written before the bounds existed, must not run
            // arithmetic on absurd values: it stops here, and rollback stays possible.
            if let violation = settings.violation(), !phase.isTerminal, phase != .planned {
                fail("the journal's settings are out of bounds (\(violation)); roll the migration back")
            }
        }
        advance(now: now)
        return .accepted
    }

    mutating func record(_ direction: ReplicationDirection, shard: ShardID, position: UInt64, backlog: Int, lag: UInt64) {
        let progress = StreamProgress(position: position, backlog: backlog, lagMillis: lag)
        switch direction {
        case .forward:
            if (forward[shard]?.position ?? 0) <= position { forward[shard] = progress }
        case .reverse:
            if (reverse[shard]?.position ?? 0) <= position { reverse[shard] = progress }
        }
    }

    /// Back to preparing with every copy task at its start.
    mutating func restartCapture() {
        streamsReleased = nil
        phase = .preparing
        for index in copies.indices {
            copies[index].cursor = nil
            copies[index].done = false
        }
        verified = false
        canary = nil
        canaryPassed = false
        // The closed migration's logs went with its streams: the reopened ones start at 1.
        replayed = nil
    }

    mutating func fail(_ reason: String) {
        // The first reason stays: a failed migration's own cleanup work (fences, holds, streams)
        // may fail too, and the operator needs to know why it failed in the first place.
        if phase == .failed, failure != nil { return }
        if phase != .failed { interrupted = phase }
        phase = .failed
        failure = reason
    }

    private mutating func onCommand(_ command: MigrationEvent, now: UInt64) -> MigrationOutcome {
        switch command {
        case .pause:
            guard [.copying, .catchingUp, .cleaningUp].contains(phase) else {
                return .rejected("pause applies while copying, catching up or cleaning up, not \(phase.rawValue)")
            }
            interrupted = phase
            phase = .paused
        case .resume:
            guard phase == .paused || phase == .failed, let previous = interrupted else {
                return .rejected("resume applies to a paused or failed migration, not \(phase.rawValue)")
            }
            if let violation = settings.violation() {
                return .rejected("the migration's settings are out of bounds (\(violation)); roll it back instead")
            }
            phase = previous
            interrupted = nil
            failure = nil
            if streamsReleased == true, phase != .rollingBack {
                // Changes made while no stream was open are on no changelog: capture starts
                // again, and so does the copy (the version rule makes the rows copied before harmless).
                // A rollback before the switch needs no stream and simply goes on.
                restartCapture()
                return .accepted
            }
            if phase == .cuttingOver || phase == .rollingBack { restart(now: now) }
            if phase == .canary || phase == .verifying || phase == .servingReads {
                // A failed proof is repaired by proving again: verify (and repair) from scratch,
                // then, if the canary (or serving reads) failed, run it again from its first step.
                phase = .verifying
                verified = false
            }
        case .rollback:
            let reversible: Set<MigrationPhase> = [
                .planned, .preparing, .dualWriting, .recording, .copying, .catchingUp, .verifying, .canary, .servingReads,
                .cuttingOver, .baking, .paused, .failed,
            ]
            let from = phase == .paused || phase == .failed ? interrupted ?? phase : phase
            guard reversible.contains(phase), from != .cleaningUp, from != .rollingBack || phase == .failed else {
                return .rejected("rollback is possible until cleanup starts; the migration is \(phase.rawValue)")
            }
            beginRollback()
        case .approve(let gate):
            guard !phase.isTerminal, phase != .rollingBack else {
                return .rejected("there is nothing to approve: the migration is \(phase.rawValue)")
            }
            if let gate {
                guard settings.gates.contains(gate) else {
                    let names = settings.gates.sorted { $0.gateName < $1.gateName }.map(\.gateName)
                    return .rejected(
                        "the migration has no gate \(gate.gateName) (its gates: \(names.isEmpty ? "none" : names.joined(separator: ", ")))")
                }
                approved.insert(gate)
            } else {
                guard let waiting = awaitingApproval else { return .rejected("the migration is not waiting for an approval") }
                approved.insert(waiting)
            }
            if let waiting = awaitingApproval, approved.contains(waiting) {
                awaitingApproval = nil
                awaitingSince = nil
            }
        default:
            preconditionFailure("not a command: \(command)")
        }
        advance(now: now)
        return .accepted
    }

    /// After a crash a cutover that had not switched starts over from the hold (fences are
    /// idempotent); one that had switched only lets the held writes go. `holding` is kept as
    /// journaled: the dead process's own gate is gone, but the hold in the routers' directive
    /// outlives it, and only a release clears that (a rollback that found writes held must
    /// still release them, or other routers hold those ranges for ever).
    mutating func restart(now: UInt64) {
        guard var progress = cutover else { return }
        if phase == .cuttingOver || (phase == .rollingBack && rollback == .reverseCutover) {
            if progress.step == .release {
                // The pause of writes lost with the process is unknown; it is not recorded.
                progress.heldAt = nil
                cutover = progress
                return
            }
            progress.step = .hold
            progress.heldAt = nil
            cutover = progress
        }
    }
}
