import Foundation
import Logging
import ReshardCore
import ReshardStore

/// Called after every round's results are in and before they are journaled, with the machine as
/// it stands; whatever it returns is applied as operator commands before the journal. Fault
/// injection kills the process here (the round is then redone on restart); tests use it to act at
/// an exact point of the protocol.
public typealias MigrationRoundHook = @Sendable (MigrationStateMachine) async -> [MigrationEvent]

/// Drives one migration: asks the state machine for work, runs it (several items at once when
/// the machine allows), feeds the results back, and journals the machine after every round so a
/// restart resumes where it stopped. Operator commands are applied between rounds, never while
/// a step is in flight.
public actor MigrationRunner {
    /// The migration's id.
    public nonisolated let id: String
    private var machine: MigrationStateMachine
    private let worker: MigrationWorker
    private let metadata: any MetadataStore
    private let logger: Logger
    private let wallMillis: @Sendable () -> UInt64
    private let cutoverBudgetMillis: UInt64
    private var commands: [(MigrationEvent, CheckedContinuation<MigrationOutcome, Never>)] = []
    private var consecutiveErrors = 0
    private var lastError: String?
    private var pauses: [PauseSummary] = []
    private var running = false
    private var throttle: Throttle
    private var bulkNotBefore = ContinuousClock.now
    private let hook: MigrationRoundHook?
    private var cutoverSteps: [CutoverStepTiming] = []
    private var holdStarted: ContinuousClock.Instant?
    private var cutoverPause: Duration?
    /// How long the latest round of copy or cleanup chunks took: the throttle rests in
    /// proportion to it.
    private var lastBulkRound: Duration?
    /// Rows the latest round of copy chunks copied: the rows/s ceiling paces what was copied.
    private var lastBulkRows: Int?
    /// When each old owner's changelog was last read while copying.
    private var lastTail: [ShardID: ContinuousClock.Instant] = [:]
    /// How often an old owner with nothing waiting is read while copying.
    private static let copyingTailInterval: Duration = .milliseconds(250)
    private var journaled: MigrationStateMachine?
    private var canaryConfigured = false
    private var canaryEpoch: Int?
    private var canaryEpochStartedAt: UInt64 = 0
    private var lastRemoteShadowCheck = ContinuousClock.now - .seconds(10)
    private var handledRemoteMismatches: Set<CanaryReads.Comparison> = []
    private var reportedShadowMismatches: Int

    /// A runner for `machine`, journaling to `metadata`. A cutover whose writes have been held
    /// longer than `cutoverBudget` before the switch is aborted and retried later.
    public init(
        machine: MigrationStateMachine, router: ShardRouter, metadata: any MetadataStore, logger: Logger,
        cutoverBudget: Duration = .seconds(1), tailBatch: Int = 1_000,
        wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
        hook: MigrationRoundHook? = nil
    ) {
        self.id = machine.id
        self.hook = hook
        self.machine = machine
        self.worker = MigrationWorker(router: router, metadata: metadata, tailBatch: tailBatch)
        self.metadata = metadata
        self.logger = logger
        self.wallMillis = wallMillis
        self.throttle = Throttle(
            maxRowsPerSecond: machine.settings.maxRowsPerSecond, latencyFactor: machine.settings.latencyFactor,
            maxChunk: machine.settings.chunkRows,
            minChunk: max(1, min(50, machine.settings.chunkRows)), parallelism: machine.settings.copyParallelism)
        self.cutoverBudgetMillis = cutoverBudget.wholeMilliseconds
        // Mismatches this process's router already reported for this migration were handled.
        self.reportedShadowMismatches = router.canary.stats.migration == machine.id ? router.canary.mismatches.count : 0
    }

    /// The machine as it stands.
    public var state: MigrationStateMachine { machine }

    /// The last error a step hit, if the step is being retried or the migration failed.
    public var error: String? { lastError ?? machine.failure }

    /// Write pauses of this migration's cutovers, measured per held write.
    public var writePauses: [PauseSummary] { pauses }

    /// How long each step of the latest cutover took, in order (a drain may take several rounds).
    public var lastCutoverSteps: [CutoverStepTiming] { cutoverSteps }

    /// The latest cutover's pause, from the start of its hold to the end of its release: its
    /// steps and the bookkeeping between them (nil before the first release).
    public var lastCutoverPauseMicros: UInt64? { cutoverPause?.wholeMicroseconds }

    /// The throttle's chunk size and, when it is slowing the copy, why.
    public var throttleState: (chunkRows: Int, reason: String?) { (throttle.chunkRows, throttle.reason) }

    /// Queues an operator command (start, pause, resume, rollback) for the next round.
    public func command(_ event: MigrationEvent) async -> MigrationOutcome {
        // With no loop to pick it up (not started, or ended), apply it now rather than wait forever.
        guard running else {
            let outcome = machine.on(event, now: wallMillis())
            await journal()
            return outcome
        }
        return await withCheckedContinuation { commands.append((event, $0)) }
    }

    /// Runs until the migration ends or the task is cancelled. Waits while paused or failed.
    public func run() async {
        running = true
        defer { running = false }
        while !machine.phase.isTerminal && !Task.isCancelled {
            await applyCommands()
            let now = wallMillis()
            if machine.phase == .cuttingOver, !machine.switched, let held = machine.cutover?.heldAt, now > held + cutoverBudgetMillis {
                // The pause must stay short: give the writes back and try again after catching up.
                logger.warning("cutover over budget; aborting this attempt", metadata: ["migration": "\(id)"])
                machine.on(.cutoverAborted(reason: "writes held over \(cutoverBudgetMillis) ms"), now: now)
                await journal()
                continue
            }
            var work = machine.work(now: now)
            var rested = false
            if machine.phase == .copying || machine.phase == .cleaningUp {
                (work, rested) = await throttled(work)
            }
            if work.isEmpty {
                // A round the throttle held back has rested as long as it should already.
                if !rested { try? await Task.sleep(for: .milliseconds(50)) }
                continue
            }
            let step = machine.phase == .cuttingOver ? machine.cutover?.step : nil
            let started = ContinuousClock.now
            if step == .hold {
                cutoverSteps = []
                holdStarted = started
            }
            let results = await perform(work, now: now)
            let ended = ContinuousClock.now
            if let step { cutoverSteps.append(CutoverStepTiming(step: step, micros: (ended - started).wholeMicroseconds)) }
            if step == .release, let holdStarted { cutoverPause = ended - holdStarted }
            if work.contains(where: Self.isBulk) {
                lastBulkRound = ended - started
                lastBulkRows = results.reduce(0) { sum, result in
                    if case .success(.chunkCopied(_, _, let rows, _)) = result { return sum + rows }
                    return sum
                }
            }
            var failed: (any Error)?
            // A round's changelog reads go in before its other facts, whatever order the tasks
            // finished in: a copy that finishes in this round marks the backlogs stale, and a read
            // made alongside it must not undo that, or catching_up is skipped at random.
            for result in results.filter(Self.isChangelogRead) + results.filter({ !Self.isChangelogRead($0) }) {
                switch result {
                case .success(let event):
                    if case .writesReleased = event, machine.cutover?.step == .release { pauses.append(worker.router.gate.takePauses()) }
                    machine.on(event, now: wallMillis())
                case .failure(let error): failed = error
                }
            }
            // Routers follow the canary as soon as the machine moves it, not a round later.
            await syncCanary()
            for event in await hook?(machine) ?? [] { machine.on(event, now: wallMillis()) }
            // While writes are held every millisecond is client pause, and no journal is needed:
            // each cutover step is idempotent, the hold itself dies with the process, and a restart
            // redoes the cutover from the hold after reconciling with the published map.
            if !machine.holding { await journal() }
            if let failed { await handle(failed) } else { consecutiveErrors = 0; lastError = nil }
            // Let the rest of the system breathe between rounds of bulk work.
            if results.count > 0, machine.phase == .copying || machine.phase == .cleaningUp { await Task.yield() }
        }
        // From here a command is applied on arrival: one queued while the work below awaits
        // would wait for a loop that has ended, and its caller for ever.
        running = false
        await applyCommands()
        await syncCanary()
        if machine.phase.isTerminal { await closeStreams() }
    }

    /// A migration that ended no longer reads changes: its streams go (PostgreSQL slots pin WAL
    /// for as long as they exist). What cannot be closed now is closed by the next start's sweep.
    private func closeStreams() async {
        let problems = await worker.closeStreams(machine)
        if problems.isEmpty { return }
        logger.warning(
            "could not close every change stream; the next start closes the rest",
            metadata: ["migration": "\(id)", "problems": "\(problems.joined(separator: "; "))"])
    }

    /// Routers shadow-read what the machine's canary step says (through the directive, so
    /// routers of other processes too); a real mismatch one of them found halts the canary. This
    /// router's own mismatches are seen at once, other routers' through their reports, read at
    /// most once a second.
    private func syncCanary() async {
        let router = worker.router
        guard let percent = machine.canaryReadPercent else {
            if canaryConfigured { await publishCanary(nil) }
            return
        }
        // A new owner is allowed to be as far behind as catching up tolerates, or as it is now,
        // plus a round of tailing (rounds are at most 200 ms apart while the canary runs). Rounded
        // up to half seconds, so the directive is not rewritten every round.
        let lag = max(machine.settings.maxLagMillis, machine.forward.values.map(\.lagMillis).max() ?? 0).adding(saturating: 250)
        await publishCanary(
            CanaryReads.Config(
                migration: id, epoch: machine.verifications, plan: machine.plan, percent: percent,
                lagAllowanceMillis: lag.adding(saturating: 499) / 500 * 500))
        if canaryEpoch != machine.verifications {
            canaryEpoch = machine.verifications
            canaryEpochStartedAt = wallMillis()
        }
        let found: String?
        do {
            found = try await newShadowMismatch(readingReports: false)
        } catch {
            logger.warning("could not read the routers' shadow reads", metadata: ["migration": "\(id)", "error": "\(error)"])
            found = nil
        }
        guard let read = found else { return }
        logger.warning("canary halted by a shadow read mismatch", metadata: ["migration": "\(id)", "read": "\(read)"])
        machine.on(.shadowMismatch(read), now: wallMillis())
        await journal()
        await publishCanary(nil)
    }

    /// The first shadow-read mismatch not acted on yet: this router's at once, other routers'
    /// from their reports, which are read when `readingReports` and otherwise at most once a second.
    private func newShadowMismatch(readingReports: Bool) async throws -> String? {
        let router = worker.router
        let mismatches = router.canary.mismatches
        if mismatches.count > reportedShadowMismatches {
            reportedShadowMismatches = mismatches.count
            return mismatches.latest?.description ?? "\(mismatches.count) mismatch(es)"
        }
        let now = ContinuousClock.now
        guard readingReports || now - lastRemoteShadowCheck >= .seconds(1) else { return nil }
        lastRemoteShadowCheck = now
        for (name, stats) in try await router.reportedShadowReads(migration: id).sorted(by: { $0.key < $1.key }) {
            guard
                let mismatch = stats.recent.last(where: {
                    $0.outcome.isMismatch && $0.at >= canaryEpochStartedAt && !handledRemoteMismatches.contains($0)
                })
            else { continue }
            handledRemoteMismatches.insert(mismatch)
            return "\(mismatch) (router \(name))"
        }
        return nil
    }

    /// The end of a canary step: it passes only if no router's shadow reads up to `upTo` found
    /// a mismatch. The check starts after `upTo`, so this router's reads up to then are all in;
    /// other routers' are as recent as their last report.
    private func checkShadowReads(upTo: UInt64) async throws -> MigrationEvent {
        guard let read = try await newShadowMismatch(readingReports: true) else { return .shadowReadsChecked(upTo: upTo) }
        logger.warning("canary halted by a shadow read mismatch", metadata: ["migration": "\(id)", "read": "\(read)"])
        return .shadowMismatch(read)
    }

    /// Puts `config` in the directive; a failed save is retried at the next sync.
    private func publishCanary(_ config: CanaryReads.Config?) async {
        do {
            try await worker.router.publishDirective { $0.canary = config }
            canaryConfigured = config != nil
        } catch {
            logger.warning("could not publish the canary", metadata: ["migration": "\(id)", "error": "\(error)"])
        }
    }

    /// Copy and cleanup chunks: the bulk work the throttle paces.
    private static func isBulk(_ work: MigrationWork) -> Bool {
        switch work {
        case .copyChunk, .deleteChunk: true
        default: false
        }
    }

    private static func isChangelogRead(_ result: Result<MigrationEvent, any Error>) -> Bool {
        if case .success(.tailed) = result { return true }
        return false
    }

    /// Applies the throttle to a round of copying or cleaning up: smaller chunks, or none this
    /// round while the throttle holds the bulk work back. The changelog tails run every round
    /// regardless, so holding the copy back never lets catch-up lag build up. Cleanup deletes
    /// are throttled like copies, except that they never stop and the rows/s ceiling (a copy
    /// ceiling) does not pace them: deleting a chunk of a range holds the shard's writer as long
    /// as writing one (on SQLite a 1,000-row delete stalled client writes for 50 ms or more).
    private func throttled(_ work: [MigrationWork]) async -> (work: [MigrationWork], rested: Bool) {
        let router = worker.router
        if throttle.baselineP99Micros == nil, let baseline = router.foregroundP99Micros {
            throttle.setBaseline(p99Micros: baseline)
        }
        let now = ContinuousClock.now
        var limit = 0
        var chunksLeft = 0
        if now >= bulkNotBefore {
            // Catch-up lag is a copying signal: the streams stop before cleanup.
            let backlog =
                machine.phase == .copying ? machine.forward.values.map { $0.backlog == .max ? 0 : $0.backlog }.max() ?? 0 : 0
            let decision = throttle.decide(
                foregroundP99Micros: router.foregroundP99Micros, backlog: backlog, lastChunkMicros: lastBulkRound?.wholeMicroseconds,
                lastChunkRows: lastBulkRows,
                copying: machine.phase == .copying)
            limit = decision.chunkRows
            chunksLeft = decision.maxChunks ?? Int.max
            bulkNotBefore = now + .milliseconds(decision.delayMillis)
        }
        if limit == 0 {
            // No chunk this round: keep tailing, but at a pace that adds nothing the throttle
            // would then measure as foreground slowness (lag stays far under its bound); a rest
            // that ends sooner is waited out to its end only, so a rows/s ceiling is reached.
            let rest = now < bulkNotBefore ? min(.milliseconds(100), bulkNotBefore - now) : .milliseconds(100)
            try? await Task.sleep(for: rest)
        }
        let paced = work.compactMap { (item: MigrationWork) -> MigrationWork? in
            if case .tail(.forward, let shard, _) = item {
                // While copying, a read that finds nothing only costs the shards (on PostgreSQL
                // each read starts a decoding of the WAL): an old owner with nothing waiting is
                // read a few times a second, not every round, and one with a backlog every round.
                let waiting = machine.forward[shard].map { $0.backlog > 0 } ?? true
                if !waiting, let last = lastTail[shard], now - last < Self.copyingTailInterval { return nil }
                lastTail[shard] = now
                return item
            }
            guard Self.isBulk(item) else { return item }
            guard limit > 0, chunksLeft > 0 else { return nil }
            chunksLeft -= 1
            switch item {
            case .copyChunk(let task, let move, let table, let after, _):
                return .copyChunk(task: task, move: move, table: table, after: after, limit: limit)
            case .deleteChunk(let task, let shard, let range, let rows):
                // Cleanup chunks have their own size: the throttle's share of its full chunk.
                return .deleteChunk(task: task, shard: shard, range: range, limit: max(1, rows * limit / max(1, throttle.maxChunk)))
            default:
                return item
            }
        }
        return (paced, limit == 0)
    }

    /// Runs the round's work items concurrently; each yields an event or an error.
    private func perform(_ work: [MigrationWork], now: UInt64) async -> [Result<MigrationEvent, any Error>] {
        var checks: [Result<MigrationEvent, any Error>] = []
        var storeWork: [MigrationWork] = []
        for item in work {
            guard case .checkShadowReads(let upTo) = item else {
                storeWork.append(item)
                continue
            }
            do {
                checks.append(.success(try await checkShadowReads(upTo: upTo)))
            } catch {
                checks.append(.failure(error))
            }
        }
        return checks + (await performOnStores(storeWork, now: now))
    }

    /// Runs store work concurrently, each item's result an event or an error.
    private func performOnStores(_ work: [MigrationWork], now: UInt64) async -> [Result<MigrationEvent, any Error>] {
        let snapshot = machine
        let worker = worker
        if work.count == 1, let item = work.first {
            // Cutover steps come one at a time while writes are held: no child task to schedule.
            do {
                return [.success(try await worker.perform(item, machine: snapshot, now: now))]
            } catch {
                return [.failure(error)]
            }
        }
        return await withTaskGroup(of: Result<MigrationEvent, any Error>.self) { group in
            for item in work {
                group.addTask {
                    do {
                        return .success(try await worker.perform(item, machine: snapshot, now: now))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var results: [Result<MigrationEvent, any Error>] = []
            for await result in group { results.append(result) }
            return results
        }
    }

    private func applyCommands() async {
        guard !commands.isEmpty else { return }
        let pending = commands
        commands = []
        for (event, continuation) in pending {
            let outcome = machine.on(event, now: wallMillis())
            continuation.resume(returning: outcome)
        }
        await journal()
        // A resume or rollback moves the canary: routers follow before the next round's work.
        await syncCanary()
    }

    /// A failed step is retried with backoff; five failures in a row fail the migration (its
    /// state stays consistent: every step is idempotent and the journal holds what completed).
    private func handle(_ error: any Error) async {
        consecutiveErrors += 1
        lastError = "\(error)"
        logger.warning("migration step failed", metadata: ["migration": "\(id)", "error": "\(error)", "attempt": "\(consecutiveErrors)"])
        if consecutiveErrors >= 5 {
            // The failed phase's own work takes fences off and lets held writes go.
            machine.on(.failed(reason: "\(error)"), now: wallMillis())
            await journal()
            consecutiveErrors = 0
        } else {
            try? await Task.sleep(for: .milliseconds(100 * (1 << consecutiveErrors)))
        }
    }

    /// Saves the machine unless nothing durable changed since the last save: a throttled copy
    /// runs a changelog read every few tens of milliseconds, and re-saving an unchanged state each
    /// time (a large JSON text for a plan of hundreds of moves) was load the throttle then measured.
    private func journal() async {
        let durable = machine.durableProjection
        guard durable != journaled else { return }
        do {
            try await metadata.saveMigration(id: id, journal: try MigrationJournal.encode(machine))
            // An ended migration lets the next one in; `MigrationManager.admit` frees the slot
            // itself if this release is lost.
            if machine.phase.isTerminal { try await metadata.releaseMigration(id: id) }
            journaled = durable
        } catch {
            logger.error("could not journal the migration", metadata: ["migration": "\(id)", "error": "\(error)"])
        }
    }
}

/// How long one round of a cutover step took (writes are held from `hold` to `release`).
public struct CutoverStepTiming: Sendable, Hashable, Codable {
    /// The step the round ran.
    public let step: CutoverStep
    /// Its duration, microseconds.
    public let micros: UInt64
}

/// The migration journal's text form.
public enum MigrationJournal {
    /// The machine as JSON.
    public static func encode(_ machine: MigrationStateMachine) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(machine), as: UTF8.self)
    }

    /// A machine back from JSON.
    public static func decode(_ text: String) throws -> MigrationStateMachine {
        try JSONDecoder().decode(MigrationStateMachine.self, from: Data(text.utf8))
    }
}
