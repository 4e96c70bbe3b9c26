import ReshardAPI
import ReshardCore
import ReshardEngine

// A migration's status and proof as the API shows them, built from the engine's
// `MigrationStatus` (see API+Engine.swift for why some names carry their module).

extension API.MigrationSummary {
    init(_ status: ReshardEngine.MigrationStatus) {
        let m = status.machine
        self.init(
            id: m.id, kind: m.plan.kind.name, phase: m.phase.rawValue, moves: m.plan.moves.count, rowsCopied: m.rowsCopied,
            rowsEstimated: m.estimatedRows, error: status.error, startedMs: m.createdAt ?? m.phaseLog.first?.at,
            endedMs: m.phase.isTerminal ? m.phaseLog.last?.at : nil)
    }
}

extension API.MigrationDetail {
    /// The full status at wall time `now` (milliseconds), which dates how long a gate has waited.
    init(_ status: ReshardEngine.MigrationStatus, now: UInt64) {
        let m = status.machine
        let awaiting = m.awaitingApproval.map {
            API.AwaitingApproval(gate: $0.gateName, sinceMs: m.awaitingSince, waitingMs: status.waitingMillis(now: now))
        }
        self.init(
            summary: API.MigrationSummary(status),
            interrupted: m.interrupted?.rawValue,
            fromGeneration: m.plan.source.generation,
            toGeneration: m.plan.target.generation,
            copyTasksDone: m.copies.filter(\.done).count,
            copyTasks: m.copies.count,
            forward: Self.streams(m.forward),
            reverse: Self.streams(m.reverse),
            changeCapture: Dictionary(status.changeCapture.map { ($0.key.rawValue, $0.value) }, uniquingKeysWith: { first, _ in first }),
            cutoverStep: m.cutover?.step.rawValue,
            cutoverAttempts: m.cutoverAttempts,
            phases: m.phaseLog.map { API.PhaseMark(phase: $0.phase.rawValue, atMs: $0.at) },
            cutoverSteps: status.cutoverSteps.map { API.CutoverStepTiming(step: $0.step.rawValue, ms: API.millis($0.micros)) },
            throttle: API.Throttle(
                chunkRows: status.throttleChunkRows, reason: status.throttleReason, maxRowsPerSecond: m.settings.maxRowsPerSecond),
            writePauses: status.pauses.map {
                API.WritePause(writesHeld: $0.count, p50Ms: $0.p50Millis, p99Ms: $0.p99Millis, maxMs: $0.maxMillis)
            },
            rowsDeleted: m.deletions.reduce(0) { $0 + $1.rows },
            tombstonesPurged: m.purges.reduce(0) { $0 + $1.rows },
            rollbackStep: m.rollback?.rawValue,
            mismatches: Array(m.mismatches.prefix(20)),
            awaitingApproval: awaiting,
            gates: m.settings.gates.map(\.gateName).sorted(),
            approved: m.approved.map(\.gateName).sorted(),
            bakeMs: m.settings.bakeMillis,
            bakeUntilMs: m.bakeUntil,
            canary: API.CanaryState(
                steps: m.settings.canarySteps, stepMs: m.settings.canaryStepMillis, step: m.phase == .canary ? m.canary?.step : nil,
                percent: m.canaryReadPercent, passed: m.canaryPassed, stepEndsMs: m.phase == .canary ? m.canaryStepEnd : nil),
            shadowReads: status.shadow.map(API.ShadowReads.init),
            verification: m.verification.map { API.VerificationSummary($0, verifications: m.verifications) },
            strategy: m.settings.strategyInForce.rawValue,
            routes: m.routeDirective.map {
                API.Routes(writes: $0.routes.writes.rawValue, reads: $0.routes.reads.rawValue, shadowPercent: $0.shadowPercent)
            },
            secondWrites: Self.secondWrites(status), replay: Self.replay(status), reads: Self.reads(status),
            redirects: Self.redirects(status))
    }

    /// A strategy that can move reads step by step shows its steps and this router's served reads.
    private static func reads(_ status: ReshardEngine.MigrationStatus) -> API.ReadServing? {
        let m = status.machine
        guard m.settings.strategyInForce.servesReadsGradually else { return nil }
        let mine = status.served ?? ReshardEngine.ServedReads.Stats()
        return API.ReadServing(
            steps: m.settings.readStepsInForce, stepMs: m.settings.readStepMillis ?? MigrationSettings.defaultReadStepMillis,
            step: m.phase == .servingReads ? m.canary?.step : nil, percent: m.readServePercent,
            maxErrorRate: m.settings.maxReadErrorRate ?? MigrationSettings.defaultMaxReadErrorRate,
            maxLatencyFactor: m.settings.maxReadLatencyFactor ?? MigrationSettings.defaultMaxReadLatencyFactor, active: mine.active,
            served: mine.served, errors: mine.errors, oldPath: mine.oldPath, servedP99Ms: mine.servedP99Micros.map(API.millis),
            oldPathP99Ms: mine.oldPathP99Micros.map(API.millis), sentBack: mine.sentBack)
    }

    /// A strategy that switches first shows this router's copies on access and old-owner reads.
    private static func redirects(_ status: ReshardEngine.MigrationStatus) -> API.Redirects? {
        guard status.machine.settings.strategyInForce.switchesFirst else { return nil }
        let mine = status.secondWrites ?? ReshardEngine.SecondWrites.Stats()
        return API.Redirects(copied: mine.copied, oldOwnerReads: mine.oldOwnerReads)
    }

    /// A strategy that records writes shows this router's recordings and the migration's replay.
    private static func replay(_ status: ReshardEngine.MigrationStatus) -> API.Replay? {
        let m = status.machine
        guard m.settings.strategyInForce.records else { return nil }
        let mine = status.secondWrites ?? ReshardEngine.SecondWrites.Stats()
        return API.Replay(
            recorded: mine.recorded, unrecorded: mine.unrecorded, replayed: m.replayed?.applied ?? 0, waiting: m.pacing?.replayWaiting,
            position: m.replayed?.position ?? 0)
    }

    /// A strategy with second writes shows this router's and the retry queue's figures.
    private static func secondWrites(_ status: ReshardEngine.MigrationStatus) -> API.SecondWrites? {
        guard status.machine.settings.strategyInForce.writesSecond else { return nil }
        let mine = status.secondWrites ?? ReshardEngine.SecondWrites.Stats()
        let queue = status.machine.pacing?.secondWrites ?? ReshardCore.SecondWriteRetries()
        return API.SecondWrites(
            active: mine.active, written: mine.written, queued: mine.queued, unqueued: mine.unqueued, waiting: queue.waiting,
            retried: queue.retried, reconcile: queue.needsReconciliation, retryError: queue.lastError)
    }

    /// Streams by shard; a backlog never read (`.max`) is unknown, written `null`.
    private static func streams(_ streams: [ShardID: ReshardCore.StreamProgress]) -> [String: API.StreamProgress] {
        Dictionary(
            streams.map { shard, stream in
                (
                    shard.rawValue,
                    API.StreamProgress(
                        position: stream.position, backlog: stream.backlog == .max ? nil : stream.backlog, lagMs: stream.lagMillis)
                )
            }, uniquingKeysWith: { first, _ in first })
    }
}

extension API.ShadowReads {
    init(_ stats: ReshardEngine.ShadowReads.Stats) {
        self.init(
            active: stats.active, halted: stats.halted, percent: stats.percent, reads: stats.reads, matches: stats.matches, lag: stats.lag,
            mismatches: stats.mismatches, errors: stats.errors, latencyDeltaP50Us: stats.latencyDeltaP50Micros,
            latencyDeltaP99Us: stats.latencyDeltaP99Micros,
            // The engine keeps them newest last; the API lists the newest first.
            recent: stats.recent.reversed().map {
                API.ShadowComparison(
                    table: $0.table.rawValue, pk: $0.pk, sourceVersion: $0.sourceVersion, targetVersion: $0.targetVersion,
                    result: $0.outcome.name, atMs: $0.at)
            })
    }
}

extension API.DiffCounts {
    init(_ counts: [DiffClass: Int]) {
        self.init(
            missingOnTarget: counts[.missingOnTarget] ?? 0, extraOnTarget: counts[.extraOnTarget] ?? 0,
            olderOnTarget: counts[.olderOnTarget] ?? 0, newerOnTarget: counts[.newerOnTarget] ?? 0, corrupt: counts[.corrupt] ?? 0)
    }
}

extension API.VerificationSummary {
    init(_ report: ReshardCore.VerificationReport, verifications: Int) {
        self.init(
            verifications: verifications, passed: report.passed, atMs: report.at, ms: API.millis(report.micros), moves: report.moves.count,
            rowsCompared: report.rowsCompared, subranges: report.moves.reduce(0) { $0 + $1.subranges },
            mismatchedSubranges: report.moves.reduce(0) { $0 + $1.mismatchedSubranges }, differences: API.DiffCounts(report.differences),
            repaired: report.repaired, unresolved: report.unresolved.count,
            aggregates: report.aggregates.map { result in
                API.AggregateResult(
                    check: result.check.description, old: API.AggregateSide(result.old), new: API.AggregateSide(result.new),
                    matches: result.matches)
            })
    }
}

extension API.AggregateSide {
    init(_ summary: AggregateSummary) {
        self.init(rows: summary.rows, numeric: summary.numeric, sum: summary.sum)
    }
}

extension API.VerificationReport {
    /// The full report: per move, rows compared, sub-ranges, differences by class, repairs, time.
    init(_ status: ReshardEngine.MigrationStatus) {
        let m = status.machine
        guard let report = m.verification else {
            self = .notVerifiedYet(id: m.id, phase: m.phase.rawValue)
            return
        }
        let moves = report.moves.map { result in
            // A move index the plan lacks (a journal from another build) is reported without its range.
            let move = m.plan.moves.indices.contains(result.move) ? m.plan.moves[result.move] : nil
            return API.MoveVerification(
                move: result.move, start: move?.range.startHex, end: move?.range.endHex, source: move?.source.rawValue,
                target: move?.target.rawValue, rowsCompared: result.rowsCompared, subranges: result.subranges,
                mismatchedSubranges: result.mismatchedSubranges, differences: API.DiffCounts(result.differences),
                repaired: result.repaired, passes: result.passes, clean: result.clean, ms: API.millis(result.micros))
        }
        self.init(
            id: m.id, phase: m.phase.rawValue, summary: API.VerificationSummary(report, verifications: m.verifications),
            positions: Dictionary(report.positions.map { ($0.key.rawValue, $0.value) }, uniquingKeysWith: { first, _ in first }),
            unresolved: Array(report.unresolved.prefix(100)), moves: moves)
    }
}
