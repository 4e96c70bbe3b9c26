/// The runner's loop, from the machine's side: `nextRound` says what to run (paced), `finish`
/// takes the round's results back (in the machine's order), `journalDue` says whether to save.
/// The runner decides nothing of its own, so a simulation that drives these three calls tests
/// exactly what production runs.
extension MigrationStateMachine {
    /// The work of the next round at wall time `now`, paced: deadlines are checked first (a
    /// cutover over its budget is aborted), a failed round's backoff is waited out, copy and
    /// cleanup chunks are sized and spaced by the throttle from `foregroundP99Micros` (the
    /// routers' recent p99), idle changelogs and other routers' shadow reads are read only so
    /// often. Empty when there is nothing to do until an operator acts, or, in an ended
    /// migration, nothing left to tidy.
    public mutating func nextRound(now: UInt64, foregroundP99Micros: UInt64? = nil) -> [MigrationWork] {
        on(.tick, now: now)
        var pacing = self.pacing ?? MigrationPacing(settings: settings)
        defer { self.pacing = pacing }
        pacing.bulkRound = false
        if let retryAt = pacing.retryAt, now < retryAt { return [.waitUntil(retryAt)] }
        var work = self.work(now: now)
        let stepEnd = canaryStepEnd
        work.removeAll { item in
            guard case .checkShadowReads(_, let upTo) = item else { return false }
            // The check at a step's end always runs: the step passes on it.
            if let stepEnd, upTo >= stepEnd { return false }
            if let last = pacing.shadowCheckedAt, now < last.adding(saturating: MigrationPacing.shadowCheckMillis) { return true }
            pacing.shadowCheckedAt = now
            return false
        }
        if phase == .copying || phase == .cleaningUp {
            work = pacing.pace(work, now: now, foregroundP99Micros: foregroundP99Micros, forward: forward, copying: phase == .copying)
        }
        if retriesSecondWrites, now >= pacing.secondWrites.nextAt {
            // Held until the pass reports back, so two rounds never run passes side by side.
            pacing.secondWrites.nextAt = .max
            work.append(.retrySecondWrites(limit: MigrationPacing.secondWriteRetryBatch))
        }
        return work
    }

    /// Feeds back the results of a round that took `elapsedMicros`, one event per work item
    /// (`.stepFailed` for an item that failed), in whatever order the items finished.
    ///
    /// The round's changelog reads count first: a copy that finishes in this round marks the
    /// backlogs stale, and a read made alongside it must not undo that, or catching up would be
    /// skipped at random. A round with a failed item counts once towards
    /// `MigrationPacing.maxFailures`, however many of its items failed; a round that did
    /// anything and failed nowhere clears the count.
    public mutating func finish(round events: [MigrationEvent], now: UInt64, elapsedMicros: UInt64 = 0) {
        var pacing = self.pacing ?? MigrationPacing(settings: settings)
        pacing.recordBulk(events, micros: elapsedMicros)
        self.pacing = pacing
        var reads: [MigrationEvent] = []
        var others: [MigrationEvent] = []
        var failure: MigrationEvent?
        for event in events {
            switch event {
            case .tailed: reads.append(event)
            case .stepFailed: failure = event
            default: others.append(event)
            }
        }
        for event in reads + others { on(event, now: now) }
        if let failure {
            on(failure, now: now)
        } else if events.contains(where: { $0 != .tick }) {
            self.pacing?.failures = 0
            self.pacing?.lastError = nil
            self.pacing?.retryAt = nil
        }
    }

    /// Whether failed second writes are retried now: while a strategy with second writes has not
    /// switched (after the switch the drain has carried every write, and routers write no second
    /// writes), and not while writes are held (the critical section gets nothing extra).
    var retriesSecondWrites: Bool {
        guard settings.strategyInForce.writesSecond, !switched, !holding else { return false }
        return [.dualWriting, .copying, .catchingUp, .verifying, .canary].contains(phase)
    }

    /// Forgets this process's pacing figures (what a journal leaves out).
    public mutating func dropPacing() { pacing = nil }

    /// The latest failed step's error, while the step is retried.
    public var stepError: String? { pacing?.lastError }

    /// A failed work item: retried after a backoff; `MigrationPacing.maxFailures` failed rounds
    /// in a row fail the migration, whose failed phase then takes fences off and lets held
    /// writes go. An ended migration's housekeeping (the canary's directive, its change streams)
    /// gives up instead: the next start's sweep closes what is left.
    mutating func stepFailed(_ reason: String, now: UInt64) {
        var pacing = self.pacing ?? MigrationPacing(settings: settings)
        defer { self.pacing = pacing }
        pacing.lastError = reason
        pacing.failures += 1
        guard pacing.failures >= MigrationPacing.maxFailures else {
            pacing.retryAt = now.adding(saturating: MigrationPacing.backoffMillis(failures: pacing.failures))
            return
        }
        pacing.failures = 0
        pacing.retryAt = nil
        if phase.isTerminal {
            streamsReleased = true
            routesShown = routeDirective.map(RouteDirective.Shown.init)
            routesStale = nil
        } else {
            fail(reason)
        }
    }
}
