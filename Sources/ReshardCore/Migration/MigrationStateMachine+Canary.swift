/// The canary of reads: routers shadow-read a growing share of the moving ranges' reads from the
/// new owners, step by step; a step passes once its time is up and every router's shadow reads
/// up to its end were checked clean.
///
/// Serving reads (`serving_reads`) runs the same steps with `read_steps`: there the share is
/// served by the new owners alone, and a step passes once no router sent its reads back up to
/// its end. Both keep their progress in `canary`.
extension MigrationStateMachine {
    /// The steps of the phase that moves reads step by step now (empty in any other phase).
    var readPhaseSteps: [Double] {
        switch phase {
        case .canary: settings.canarySteps
        case .servingReads: settings.readStepsInForce
        default: []
        }
    }

    /// The share of the moving ranges' reads routers serve from the new owners alone now, in
    /// percent; nil outside `serving_reads`.
    public var readServePercent: Double? {
        guard phase == .servingReads, let canary, readPhaseSteps.indices.contains(canary.step) else { return nil }
        return readPhaseSteps[canary.step]
    }

    /// The share of the moving ranges' reads routers shadow-read from the new owners now, in
    /// percent; `nil` outside the canary.
    public var canaryReadPercent: Double? {
        guard phase == .canary, let canary, settings.canarySteps.indices.contains(canary.step) else { return nil }
        return settings.canarySteps[canary.step]
    }

    /// When the current canary (or read) step ends (wall milliseconds); nil outside them.
    public var canaryStepEnd: UInt64? {
        guard let canary else { return nil }
        switch phase {
        case .canary: return canary.since.adding(saturating: settings.canaryStepMillis)
        case .servingReads: return canary.since.adding(saturating: settings.readStepMillis ?? MigrationSettings.defaultReadStepMillis)
        default: return nil
        }
    }

    /// The canary's work: keep the new owners current, and check the routers' shadow reads, at
    /// the step's end (the step passes on it) and in between (so a mismatch halts the migration
    /// within a second or so, not at the end of a long step; `nextRound` spaces these).
    func canaryWork(now: UInt64) -> [MigrationWork] {
        guard let canary, let end = canaryStepEnd else { return [] }
        let since = canary.startedAt ?? canary.since
        // Serving reads comes after a switch: reverse replication keeps the old owners current.
        let tails = switched ? reverseTails() : forwardTails()
        if now >= end && (canary.checkedUpTo ?? 0) < end { return tails + [.checkShadowReads(since: since, upTo: end)] }
        return tails + [.checkShadowReads(since: since, upTo: min(now, end)), .waitUntil(end)]
    }

    /// Records a clean check; only one that reaches the step's end counts (the ones in between
    /// change nothing worth a journal).
    mutating func shadowReadsChecked(upTo: UInt64) {
        guard phase == .canary || phase == .servingReads, var progress = canary, let end = canaryStepEnd, upTo >= end else { return }
        progress.checkedUpTo = max(progress.checkedUpTo ?? 0, upTo)
        canary = progress
    }

    /// The canary moves to its next step when the current one has lasted its time and its
    /// shadow reads up to its end were checked clean; after the last, the cutover starts once the
    /// new owners are caught up.
    mutating func advanceCanary(now: UInt64) {
        guard var progress = canary, let end = canaryStepEnd else { return }
        guard now >= end, (progress.checkedUpTo ?? 0) >= end else { return }
        if progress.step + 1 < readPhaseSteps.count {
            progress.step += 1
            progress.since = now
            progress.checkedUpTo = nil
            canary = progress
            return
        }
        if phase == .servingReads {
            proceedToNext(now: now)
            return
        }
        canaryPassed = true
        if caughtUp { proceedToNext(now: now) }
    }
}
