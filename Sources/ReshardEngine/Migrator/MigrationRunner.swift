import Foundation
import Logging
import ReshardCore
import ReshardStore

/// Called after every round's results are in and before they are journaled, with the machine as
/// it stands; whatever it returns is applied as operator commands before the journal. Fault
/// injection kills the process here (the round is then redone on restart); tests use it to act at
/// an exact point of the protocol.
public typealias MigrationRoundHook = @Sendable (MigrationStateMachine) async -> [MigrationEvent]

/// Runs a round's work items, given a function that runs one, and returns their events. The
/// runner's own runs them side by side in a task group; a simulation interleaves them under a
/// seeded scheduler instead.
public typealias RoundExecutor =
    @Sendable ([MigrationWork], @escaping @Sendable (MigrationWork) async -> MigrationEvent) async ->
    [MigrationEvent]

/// Drives one migration: a short loop that asks the state machine for the next round of work,
/// runs it (the items side by side), feeds the results back and journals the machine, so a
/// restart resumes where it stopped. Every decision (what next, how fast, in what order results
/// count, when to retry, abort or give up) is the machine's; the roles only do I/O. Operator
/// commands are applied between rounds, never while a step is in flight.
public actor MigrationRunner {
    /// The migration's id.
    public nonisolated let id: String
    private var machine: MigrationStateMachine
    private let worker: MigrationWorker
    private let routers: any RouterControl
    /// Whether this runner recorded the migration's cleanup event.
    private var cleanupAnnounced = false
    private let metadata: any MetadataStore
    private let logger: Logger
    private let clock: any Clock<Duration>
    private let wallMillis: @Sendable () -> UInt64
    /// Runs a round's items (nil: side by side in a task group).
    private let executor: RoundExecutor?
    private let hook: MigrationRoundHook?
    /// Where the machine is shown after every turn (nil: nowhere, as in a simulation).
    private let metrics: MigrationMetrics?
    private var commands: [(MigrationEvent, CheckedContinuation<MigrationOutcome, Never>)] = []
    private var pauses: [PauseSummary] = []
    private var running = false
    private var cutoverSteps: [CutoverStepTiming] = []
    private var holdStarted: ContinuousClock.Instant?
    private var cutoverPause: Duration?
    private var journaled: JournalMark?
    private var journalWriter = MigrationJournal.Writer()
    /// Whether this runner's saves have stored the plan: later saves write the progress alone.
    private var planStored = false

    /// A runner for `machine` over `router`'s shards and routers, journaling to `metadata`.
    public init(
        machine: MigrationStateMachine, router: ShardRouter, metadata: any MetadataStore, logger: Logger, tailBatch: Int = 1_000,
        wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
        hook: MigrationRoundHook? = nil
    ) {
        self.init(
            machine: machine, stores: router, routers: RouterFleet(router: router, metadata: metadata), metadata: metadata, logger: logger,
            tailBatch: tailBatch,
            wallMillis: wallMillis, hook: hook)
    }

    /// A runner for `machine` over `stores`, steering `routers`, journaling to `metadata`. Waits
    /// go through `clock`. With an `executor`, it runs each round's items, and shards are fenced
    /// one by one (a deterministic simulation). `journaled` is what the journal already holds (a
    /// resumed migration's, as read): the first round then saves only what is worth saving.
    public init(
        machine: MigrationStateMachine, stores: any StoreDirectory, routers: any RouterControl, metadata: any MetadataStore,
        logger: Logger, tailBatch: Int = 1_000, clock: any Clock<Duration> = ContinuousClock(),
        wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
        hook: MigrationRoundHook? = nil, executor: RoundExecutor? = nil, journaled: MigrationStateMachine? = nil,
        metrics: MigrationMetrics? = nil
    ) {
        self.metrics = metrics
        self.id = machine.id
        self.machine = machine
        self.worker = MigrationWorker(
            id: machine.id, plan: machine.plan, stores: stores, routers: routers, metadata: metadata, tailBatch: tailBatch,
            concurrent: executor == nil)
        self.routers = routers
        self.metadata = metadata
        self.logger = logger
        self.clock = clock
        self.wallMillis = wallMillis
        self.hook = hook
        self.executor = executor
        self.journaled = journaled?.journalMark(now: wallMillis())
    }

    /// The machine as it stands.
    public var state: MigrationStateMachine { machine }

    /// The last error a step hit, if the step is being retried or the migration failed.
    public var error: String? { machine.stepError ?? machine.failure }

    /// Write pauses of this migration's cutovers, measured per held write.
    public var writePauses: [PauseSummary] { pauses }

    /// How long each step of the latest cutover took, in order (a drain may take several rounds).
    public var lastCutoverSteps: [CutoverStepTiming] { cutoverSteps }

    /// The latest cutover's pause, from the start of its hold to the end of its release: its
    /// steps and the bookkeeping between them (nil before the first release).
    public var lastCutoverPauseMicros: UInt64? { cutoverPause?.wholeMicroseconds }

    /// The throttle's chunk size and, when it is slowing the copy, why.
    public var throttleState: (chunkRows: Int, reason: String?) {
        let throttle = machine.pacing?.throttle ?? MigrationPacing(settings: machine.settings).throttle
        return (throttle.chunkRows, throttle.reason)
    }

    /// Queues an operator command (start, pause, resume, rollback) for the next round.
    public func command(_ event: MigrationEvent) async -> MigrationOutcome {
        // With no loop to pick it up (not started, or ended), apply it now rather than wait forever.
        guard running else {
            let outcome = machine.on(event, now: wallMillis())
            metrics?.observe(machine)
            await journal(command: true)
            return outcome
        }
        return await withCheckedContinuation { commands.append((event, $0)) }
    }

    /// Runs until the migration has ended and tidied up, or the task is cancelled. Waits while
    /// paused or failed.
    public func run() async {
        running = true
        defer { running = false }
        while !Task.isCancelled, await step() {}
        // The last tidying of an ended migration is progress that may not have been saved yet.
        if machine.phase.isTerminal { await journal(command: true) }
        // From here a command is applied on arrival: one queued while the work below awaits
        // would wait for a loop that has ended, and its caller for ever.
        running = false
        await applyCommands()
    }

    /// One turn of the loop: pending commands, then a round of work (or a short idle wait).
    /// Returns false once the migration has ended and has nothing left to tidy. A simulation
    /// calls this directly, between its own moves.
    public func step() async -> Bool {
        await applyCommands()
        let work = machine.nextRound(now: wallMillis(), foregroundP99Micros: routers.foregroundP99Micros)
        if work.isEmpty {
            // A gate the machine just began to wait at.
            metrics?.observe(machine)
            if machine.phase.isTerminal { return false }
            // Nothing until an operator acts.
            try? await clock.sleep(for: .milliseconds(50))
            return true
        }
        await round(work)
        return true
    }

    /// Runs one round of work, feeds its results back, and journals.
    private func round(_ work: [MigrationWork]) async {
        let before = machine.phase
        let step = machine.phase == .cuttingOver ? machine.cutover?.step : nil
        let started = ContinuousClock.now
        if step == .hold {
            cutoverSteps = []
            holdStarted = started
        }
        let events = await perform(work)
        let ended = ContinuousClock.now
        if let step { cutoverSteps.append(CutoverStepTiming(step: step, micros: (ended - started).wholeMicroseconds)) }
        if step == .release, let holdStarted { cutoverPause = ended - holdStarted }
        // A forward hold ends with its release, or with the abort that let the writes go to the
        // old owners (the round after the abort, out of the cutover phase).
        if let holdStarted, events.contains(.writesReleased) {
            metrics?.recordWriteHold(ended - holdStarted, switched: step == .release)
            self.holdStarted = nil
        }
        if machine.cutover?.step == .release, events.contains(.writesReleased) { pauses.append(routers.takeWritePauses()) }
        machine.finish(round: events, now: wallMillis(), elapsedMicros: (ended - started).wholeMicroseconds)
        for event in await hook?(machine) ?? [] { machine.on(event, now: wallMillis()) }
        // Before the journal's await, so that whoever reads the machine's state (status) finds
        // the gauges already showing it. A few dozen stores, beside a round's shard I/O.
        metrics?.observe(machine)
        await journal()
        report(events, from: before)
    }

    /// Runs a round's items side by side (or one by one), each yielding an event.
    private func perform(_ work: [MigrationWork]) async -> [MigrationEvent] {
        let now = wallMillis()
        let worker = worker
        let clock = clock
        let sleep: @Sendable (UInt64) async throws -> Void = { try await clock.sleep(for: .milliseconds($0)) }
        if let executor { return await executor(work) { await worker.perform($0, now: now, sleep: sleep) } }
        // Cutover steps come one at a time while writes are held: no child task to schedule.
        if work.count == 1, let item = work.first { return [await worker.perform(item, now: now, sleep: sleep)] }
        return await withTaskGroup(of: MigrationEvent.self) { group in
            for item in work { group.addTask { await worker.perform(item, now: now, sleep: sleep) } }
            var events: [MigrationEvent] = []
            for await event in group { events.append(event) }
            return events
        }
    }

    /// Logs what the round changed that an operator wants to see.
    private func report(_ events: [MigrationEvent], from before: MigrationPhase) {
        for case .stepFailed(let error) in events {
            logger.warning(
                "migration step failed",
                metadata: ["migration": "\(id)", "error": "\(error)", "attempt": "\(machine.pacing?.failures ?? 0)"])
        }
        guard machine.phase != before else { return }
        var metadata: Logger.Metadata = ["migration": "\(id)", "from": "\(before.rawValue)", "to": "\(machine.phase.rawValue)"]
        if let failure = machine.failure, machine.phase == .failed { metadata["reason"] = "\(failure)" }
        if before == .cuttingOver, machine.phase == .catchingUp {
            logger.warning("cutover over budget; writes released, trying again after catching up", metadata: metadata)
        } else {
            logger.info("migration phase changed", metadata: metadata)
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
        metrics?.observe(machine)
        await journal(command: true)
    }

    /// Saves the machine when the machine says it is due.
    private func journal(command: Bool = false) async {
        let now = wallMillis()
        guard machine.journalDue(since: journaled, now: now, command: command) else { return }
        if machine.phase == .done && !cleanupAnnounced {
            // Before the journal that says done: a crash between the two announces it again on
            // resume (a cache drops a range twice), never not at all.
            do {
                try await ClusterEvents(metadata: metadata).recordCleanup(migration: id, plan: machine.plan)
                cleanupAnnounced = true
            } catch {
                logger.warning("could not record the cleanup event", metadata: ["migration": "\(id)", "error": "\(error)"])
            }
        }
        do {
            try await save(try journalWriter.encode(machine))
            // An ended migration lets the next one in; `MigrationManager.admit` frees the slot
            // itself if this release is lost.
            if machine.phase.isTerminal { try await metadata.releaseMigration(id: id) }
            journaled = machine.journalMark(now: now)
        } catch {
            logger.error("could not journal the migration", metadata: ["migration": "\(id)", "error": "\(error)"])
        }
    }

    /// Writes the plan (both maps: 11 MB at 1,000 shards) with the first save only; every later
    /// save of a copy round writes the small rest. A journal written whole in between (an
    /// admission on resume) drops the stored plan, and the store says so: it is sent again.
    private func save(_ journal: MigrationJournal.Parts) async throws {
        do {
            try await metadata.saveMigration(id: id, progress: journal.progress, plan: planStored ? nil : journal.plan)
        } catch let error as MetadataError where error.isPlanMissing {
            try await metadata.saveMigration(id: id, progress: journal.progress, plan: journal.plan)
        }
        planStored = true
    }
}

/// How long one round of a cutover step took (writes are held from `hold` to `release`).
public struct CutoverStepTiming: Sendable, Hashable, Codable {
    /// The step the round ran.
    public let step: CutoverStep
    /// Its duration, microseconds.
    public let micros: UInt64
}
