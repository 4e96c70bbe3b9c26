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

    /// Whether the machine should be journaled at wall time `now`, given the last journal's mark.
    /// A round that only refreshed lag figures is not worth a save, and none is made while writes
    /// are held: every millisecond is client pause, each cutover step is idempotent, the hold dies
    /// with the process, and a restart redoes the cutover from the hold after learning from the
    /// published map whether it switched. A failure and an operator's `command` are always saved.
    /// A round that only moved progress (copy cursors, changelog positions, rows deleted or
    /// purged, a task found finished, a stale backlog read afresh, shadow reads checked, the
    /// canary shown to routers, an ended migration's streams closed) is saved at most every
    /// `MigrationPacing.progressJournalMillis`: every such step is idempotent (copies and applied
    /// changes never replace a newer version, deletions and purges only find less to do, a
    /// restart shows the canary again and a start sweeps the streams of ended migrations), so a
    /// restart that redoes a second of them ends where this process would have. Anything else (a
    /// phase, a cutover or canary step, a verdict) is saved at once, with the progress so far.
    public func journalDue(since last: JournalMark?, now: UInt64, command: Bool = false) -> Bool {
        guard command || !holding || phase == .failed else { return false }
        let durable = durableProjection
        guard let last else { return true }
        guard durable != last.machine else { return false }
        if command || now >= last.at.adding(saturating: MigrationPacing.progressJournalMillis) { return true }
        return durable.withoutProgress != last.machine.withoutProgress
    }

    /// What a journal saved at wall time `now` records, for the next `journalDue`.
    public func journalMark(now: UInt64) -> JournalMark { JournalMark(machine: durableProjection, at: now) }

    /// The machine with its idempotent progress zeroed: two machines that differ only there
    /// differ only in how much of the same work is done.
    var withoutProgress: MigrationStateMachine {
        var copy = self
        for index in copy.copies.indices {
            copy.copies[index].cursor = nil
            copy.copies[index].rows = 0
            copy.copies[index].done = false
        }
        for key in copy.forward.keys { copy.forward[key] = StreamProgress(position: 0, backlog: 0, lagMillis: 0) }
        for key in copy.reverse.keys { copy.reverse[key] = StreamProgress(position: 0, backlog: 0, lagMillis: 0) }
        for index in copy.deletions.indices {
            copy.deletions[index].rows = 0
            copy.deletions[index].done = false
        }
        for index in copy.purges.indices {
            copy.purges[index].rows = 0
            copy.purges[index].done = false
        }
        copy.canary?.checkedUpTo = nil
        copy.canaryShown = nil
        copy.canaryStale = nil
        // Only an ended migration's: a failed one that closed its streams must start over.
        if copy.phase.isTerminal { copy.streamsReleased = nil }
        return copy
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
            canaryShown = canaryDirective.map(CanaryDirective.Shown.init)
            canaryStale = nil
        } else {
            fail(reason)
        }
    }
}

/// What the last journal saved, and when: `journalDue` compares the machine with it.
public struct JournalMark: Sendable, Equatable {
    /// The durable projection saved.
    public let machine: MigrationStateMachine
    /// Wall time of the save, milliseconds.
    public let at: UInt64
}
