import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore
import Synchronization

/// What a migration request asks for.
public struct MigrationRequest: Sendable {
    /// The kind of migration.
    public var kind: MigrationKind
    /// Thresholds and sizes.
    public var settings: MigrationSettings
    /// Plan only: return the moves and predictions, change nothing.
    public var dryRun: Bool

    /// A request.
    public init(kind: MigrationKind, settings: MigrationSettings = MigrationSettings(), dryRun: Bool = false) {
        self.kind = kind
        self.settings = settings
        self.dryRun = dryRun
    }
}

/// A plan with the rows and bytes it is predicted to move.
public struct MigrationPreview: Sendable {
    /// The plan.
    public let plan: MigrationPlan
    /// Rows (tombstones included) in the moving ranges, per move, summed over tables.
    public let rowsPerMove: [Int]
    /// Bytes of row bodies and keys in the moving ranges (estimated from the rows scanned).
    public let bytes: Int

    /// What a shard-key change will find in the table (nil for the other kinds).
    public var layout: LayoutPreview? = nil
    /// What a load-aware kind (`rebalance` by load, `split_hot_range`) predicts of the balance.
    public var balance: BalancePreview? = nil

    /// Rows the migration is predicted to copy.
    public var rows: Int { rowsPerMove.reduce(0, +) }
}

/// The balance a load-aware plan predicts, by the load the routers measured.
public struct BalancePreview: Sendable, Hashable {
    /// What is weighed.
    public var mix: LoadMix
    /// The complete windows and the routers whose load was weighed.
    public var windows: Int
    public var routers: [String]
    /// The busiest shard's share over the mean, under the map in force and under the plan's.
    public var maxOverMean: Double
    public var predictedMaxOverMean: Double
}

/// A shard-key change's dry run: the rows it re-places and how they will spread.
public struct LayoutPreview: Sendable, Hashable {
    /// Live rows of the table, counted in full.
    public var rows = 0
    /// Their bytes (primary keys and bodies).
    public var bytes = 0
    /// Live rows each shard will hold under the new shard key.
    public var rowsPerShard: [ShardID: Int] = [:]
    /// Live rows with no usable value of the new shard key (missing, not a string or an integer,
    /// or not a legal key): the migration refuses to start while there are any.
    public var unplaceable = 0
    /// Up to ten of their primary keys.
    public var unplaceableExamples: [String] = []

    /// Largest over mean rows per shard under the new key (1 is perfectly even).
    public var imbalance: Double {
        let counts = rowsPerShard.values
        guard let largest = counts.max(), !counts.isEmpty, rows > 0 else { return 1 }
        return Double(largest) / (Double(rows - unplaceable) / Double(counts.count))
    }
}

/// Creates, runs, lists and resumes migrations; one at a time per cluster, because two
/// migrations moving overlapping ranges would fight over fences and the map.
public final class MigrationManager: Sendable {
    private let router: ShardRouter
    /// The routers as every migration of this process steers them (one directive for all).
    private let fleet: RouterFleet
    private let metadata: any MetadataStore
    private let logger: Logger
    private let wallMillis: @Sendable () -> UInt64
    private let runners = Mutex<[String: (runner: MigrationRunner, task: Task<Void, Never>)]>([:])
    private let finished = Mutex<[String: MigrationStatus]>([:])
    private let unreadable = Mutex<[String: String]>([:])
    private let hook: MigrationRoundHook?
    /// Whether this process runs migrations: nil without a lease (one process, always), else
    /// whether it holds the migrator lease now.
    private let leading = Mutex<Bool?>(nil)
    /// The migrations this process runs, on `/metrics`.
    private let metrics: MigrationMetrics
    /// 1 while this process runs the migrations.
    private let leaderGauge: Gauge

    /// A manager over `router`'s shards, journaling to `metadata`.
    public init(
        router: ShardRouter, metadata: any MetadataStore, logger: Logger,
        wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
        hook: MigrationRoundHook? = nil
    ) {
        self.hook = hook
        self.router = router
        self.fleet = RouterFleet(router: router, metadata: metadata)
        self.metadata = metadata
        self.logger = logger
        self.wallMillis = wallMillis
        self.metrics = MigrationMetrics(factory: router.metricsFactory)
        self.leaderGauge = Gauge(label: "reshard_migrator_leader", dimensions: [("router", router.name)], factory: router.metricsFactory)
        // Without a lease this process is the only migrator until `lead` says otherwise.
        leaderGauge.record(1)
        router.noteMigrator(leading: true)
    }

    /// Whether this process runs the migrations (it holds the lease, or there is none).
    public var isLeader: Bool { leading.withLock { $0 ?? true } }

    /// Records leadership here, on the gauge, and on the router, whose reports tell the other
    /// routers (and the dashboard) which process leads.
    private func setLeading(_ value: Bool) {
        leading.withLock { $0 = value }
        leaderGauge.record(value ? 1 : 0)
        router.noteMigrator(leading: value)
    }

    /// Runs migrations only while this process holds `lease`, until cancelled. Several processes
    /// share one metadata store; each calls this and at most one leads. The leader resumes every
    /// journaled migration when it takes the lease, and stops them the moment it finds the lease
    /// lost, so another process can take over from the journals (a step in flight finishes: every
    /// step is idempotent and the map is published by compare-and-set).
    public func lead(_ lease: any LeadershipLease, every interval: Duration = .seconds(1)) async {
        setLeading(false)
        while !Task.isCancelled {
            if !isLeader {
                do {
                    if try await lease.tryAcquire() {
                        try await fleet.prepareToLead()
                        setLeading(true)
                        logger.notice("this process now runs the migrations")
                        try await resumeAll()
                    }
                } catch {
                    // Half a take-over (the lease without every migration resumed) is undone, so the
                    // next round, here or in another process, starts from the journals again.
                    logger.warning("could not take over the migrations", metadata: ["error": "\(error)"])
                    if isLeader { await stopAll() }
                    setLeading(false)
                    await lease.release()
                }
            } else if !lease.isHeld {
                setLeading(false)
                logger.error("lost the migrator lease; stopping this process's migrations")
                await stopAll()
            }
            try? await Task.sleep(for: isLeader ? .milliseconds(250) : interval)
        }
        if isLeader {
            await stopAll()
            await lease.release()
        }
    }

    /// Starts a load rebalance on its own while this process leads, whenever `policy` says so
    /// (checked every `interval`), with `settings` (their gates hold it like any migration's);
    /// until cancelled. A refusal (another migration admitted first, a balance already within
    /// bounds) is logged and tried again at the next check.
    public func autoRebalance(_ policy: AutoRebalancePolicy, settings: MigrationSettings, every interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard isLeader else { continue }
            do {
                let machines = try await list().map(\.machine)
                let active = machines.contains { !$0.phase.isTerminal }
                let lastEnded = machines.filter(\.phase.isTerminal).compactMap { $0.phaseLog.last?.at }.max()
                let finding = try await router.clusterLoadView(rules: policy.rules).report.finding
                guard policy.shouldStart(finding: finding, migrationActive: active, lastEndedMillis: lastEnded, now: wallMillis()) else {
                    continue
                }
                let kind = MigrationKind.rebalanceLoad(LoadMix(policy.rules.signal))
                let (id, preview) = try await create(MigrationRequest(kind: kind, settings: settings))
                logger.notice(
                    "auto_rebalance started a load rebalance",
                    metadata: [
                        "migration": "\(id ?? "")", "moves": "\(preview.plan.moves.count)",
                        "predicted_max_over_mean": "\(preview.balance?.predictedMaxOverMean ?? 0)",
                    ])
            } catch {
                logger.info("auto_rebalance did not start a migration", metadata: ["error": "\(error)"])
            }
        }
    }

    private func requireLeader() throws {
        guard isLeader else {
            throw RouterError(.conflict, "not_leader", "another process runs the migrations; send migration commands to it")
        }
    }

    /// Plans `request`; unless it is a dry run, journals it and starts running it.
    public func create(_ request: MigrationRequest) async throws -> (id: String?, preview: MigrationPreview) {
        let known = Dictionary(uniqueKeysWithValues: router.tables.map { ($0.name, $0) })
        if let check = request.settings.checks.first(where: { known[$0.table] == nil }) {
            throw RouterError(.badRequest, "unknown_table", "check \(check) names table \(check.table), which does not exist")
        }
        var request = request
        // A check sums the table's rows where they are stored (its layout's storage).
        request.settings.checks = request.settings.checks.compactMap { check in
            known[check.table].flatMap { AggregateCheck(table: $0.storage, field: check.field) }
        }
        let preview = try await self.preview(request.kind)
        guard !request.dryRun else { return (nil, preview) }
        if let relayout = preview.plan.relayout, let layout = preview.layout, layout.unplaceable > 0 {
            throw RouterError(
                .conflict, "rows_without_shard_key",
                "\(layout.unplaceable) row(s) of \(relayout.from.name) have no usable \(relayout.to.shardKey) (a string or an integer key), for example \(layout.unplaceableExamples.prefix(5).joined(separator: ", ")); give them one first"
            )
        }
        try requireLeader()
        let id = "m" + String(wallMillis(), radix: 36) + String(UInt32.random(in: 0...UInt32.max) % 1296, radix: 36)
        let tables = preview.plan.relayout.map { [$0.from.storage] } ?? router.tableNames
        var machine = MigrationStateMachine(id: id, plan: preview.plan, tables: tables, settings: request.settings)
        machine.estimatedRows = preview.rows
        machine.estimatedBytes = preview.layout?.bytes ?? preview.bytes
        machine.createdAt = wallMillis()
        if case .rejected(let reason) = machine.on(.start, now: wallMillis()) {
            throw RouterError(.badRequest, "invalid_option", reason)
        }
        if let active = try await admit(machine) {
            throw RouterError(.conflict, "migration_active", "migration \(active) is still running; one migration at a time")
        }
        launch(machine)
        logger.info(
            "migration started", metadata: ["migration": "\(id)", "kind": "\(request.kind.name)", "moves": "\(preview.plan.moves.count)"])
        return (id, preview)
    }

    /// Journals `machine` if no other migration is active (atomically, in the metadata store, so
    /// that of concurrent creates, in this process or another, one wins); else the active one's
    /// id. A slot still held by a migration that ended (its release was lost with the process or
    /// to a metadata failure) or whose journal is gone is freed, and admission tried once more;
    /// a holder whose journal cannot be read keeps the slot (its fences and streams may be in
    /// place), as does one whose id could not be read.
    private func admit(_ machine: MigrationStateMachine) async throws -> String? {
        let journal = try MigrationJournal.encode(machine)
        guard let holder = try await metadata.admitMigration(id: machine.id, journal: journal) else { return nil }
        guard !holder.isEmpty else { return holder }
        if let held = try await metadata.migrations().first(where: { $0.id == holder }) {
            guard let decoded = try? MigrationJournal.decode(held.journal), decoded.phase.isTerminal else { return holder }
        }
        logger.notice("freeing the active slot of a migration that ended or has no journal", metadata: ["migration": "\(holder)"])
        try await metadata.releaseMigration(id: holder)
        return try await metadata.admitMigration(id: machine.id, journal: journal)
    }

    /// The plan and predictions for `kind` against the current map.
    public func preview(_ kind: MigrationKind) async throws -> MigrationPreview {
        let current = router.shardMap
        let registered = Set(router.snapshot.shards.keys)
        var hashes: [UInt64] = []
        if case .rebalance = kind { hashes = try await rowHashes(current) }
        // A load-aware kind weighs every router's load: a rebalance its mix, a split requests.
        let mix: LoadMix? =
            switch kind {
            case .rebalanceLoad(let weights): weights
            case .splitHotRange: LoadMix(.requests)
            default: nil
            }
        if let mix, mix.rows > 0 { hashes = try await rowHashes(current) }
        let load = mix == nil ? nil : try await router.clusterLoad()
        let plan: MigrationPlan
        var weighed: (histogram: [UInt16: Double], windows: Int)?
        do throws(PlanError) {
            if let mix, let load {
                weighed = try mix.weigh(
                    windows: load.windows.completeWindows(now: load.judgedAt), topKeys: load.keys,
                    rowHashes: hashes, map: current)
            }
            if case .changeShardKey(let name, let field) = kind {
                guard let table = router.tables.first(where: { $0.name == name }) else { throw PlanError.unknownTable(name) }
                plan = try MigrationPlanner.changeShardKey(table, field: field, current: current)
            } else {
                plan = try MigrationPlanner.plan(
                    kind, current: current, registered: registered, rowHashes: hashes, loadHistogram: weighed?.histogram ?? [:])
            }
        } catch {
            throw RouterError(error)
        }
        // One read per old owner for all its moves, not one per move and table (plans of a ring
        // have hundreds of small moves).
        var rowsPerMove = Array(repeating: 0, count: plan.moves.count)
        var bytes = 0
        let tables = plan.relayout.map { [$0.from.storage] } ?? router.tableNames
        for source in plan.sources {
            guard let store = router.store(source) else { continue }
            let indices = plan.moves.indices.filter { plan.moves[$0].source == source }
            let snapshot = try await store.summarize(SummaryRequest(tables: tables, ranges: indices.map { plan.moves[$0].range }))
            for table in tables {
                for (position, summaries) in (snapshot.summaries[table] ?? []).enumerated() where indices.indices.contains(position) {
                    let summary = summaries.reduce(RangeSummary.empty, +)
                    rowsPerMove[indices[position]] += summary.rows
                    bytes += summary.bytes
                }
            }
        }
        var preview = MigrationPreview(plan: plan, rowsPerMove: rowsPerMove, bytes: bytes)
        if let relayout = plan.relayout { preview.layout = try await layoutPreview(relayout, map: current) }
        if let mix, let load, let weighed {
            preview.balance = BalancePreview(
                mix: mix, windows: weighed.windows, routers: load.routers,
                maxOverMean: LoadMix.maxOverMean(weighed.histogram, map: current),
                predictedMaxOverMean: LoadMix.maxOverMean(weighed.histogram, map: plan.target))
        }
        return preview
    }

    /// The hot-spot finding's move, judged by `signal` on every router's load, as the kind that
    /// runs it; an error naming the finding when it proposes no move.
    public func hotRangeKind(signal: LoadSignal) async throws -> MigrationKind {
        let rules = HotSpotRules(signal: signal)
        let finding = try await router.clusterLoadView(rules: rules).report.finding
        do throws(PlanError) {
            return try finding.splitKind(rules: rules)
        } catch {
            throw RouterError(error)
        }
    }

    /// Reads every row of the table once: how many there are, where each goes under the new
    /// shard key, and which have no usable value of it.
    private func layoutPreview(_ relayout: Relayout, map: ShardMap) async throws -> LayoutPreview {
        var preview = LayoutPreview()
        for shard in map.shards { preview.rowsPerShard[shard] = 0 }
        for source in map.shards {
            guard let store = router.store(source) else { continue }
            // One scan of the shard's table, not one per range it owns (hundreds on a ring: the
            // dry run and every create would pay them); rows it does not own are not its.
            try await store.forEachChunk(table: relayout.from.storage) { rows in
                let owned = rows.filter { map.owner(of: $0.hash) == source }
                for image in RowImage.images(owned, in: relayout.from) {
                    guard let body = image.body else { continue }
                    preview.rows += 1
                    preview.bytes += image.pk.utf8.count + body.utf8.count
                    let key = (try? StrictJSON.object(Array(body.utf8)).members)?[relayout.to.shardKey]?.keyText
                    guard let key, RowKey.isValid(key) else {
                        preview.unplaceable += 1
                        if preview.unplaceableExamples.count < 10 { preview.unplaceableExamples.append(image.pk) }
                        continue
                    }
                    preview.rowsPerShard[map.owner(of: KeyHash.of(key)), default: 0] += 1
                }
            }
        }
        return preview
    }

    /// Resumes every journaled migration that had not ended (after a crash or restart).
    public func resumeAll() async throws {
        for (id, journal) in try await metadata.migrations() {
            let decoded: MigrationStateMachine
            do {
                decoded = try MigrationJournal.decode(journal)
            } catch {
                // A journal this build cannot read (damaged, or written by another release) must
                // not keep the router from starting: the migration stands failed, with the reason,
                // in the list and in its status. Its slot stays held (its fences and streams may
                // still be in place), so the operator decides what happens next.
                let reason = "the journal cannot be read, so the migration cannot be resumed or rolled back here: \(error)"
                logger.error("cannot read the journal of migration \(id); it is not resumed", metadata: ["error": "\(error)"])
                unreadable.withLock { $0[id] = String(reason.prefix(1_000)) }
                continue
            }
            var machine = decoded
            if machine.phase.isTerminal {
                finished.withLock { $0[id] = MigrationStatus(machine: machine, error: machine.failure, pauses: []) }
                continue
            }
            // Metadata written before admission existed has no slot taken: take it now.
            if let holder = try await metadata.admitMigration(id: id, journal: journal) {
                logger.warning("another migration holds the active slot", metadata: ["migration": "\(id)", "holder": "\(holder)"])
            }
            machine.on(.restarted(publishedGeneration: try await publishedGeneration(machine.plan)), now: wallMillis())
            logger.info("resuming migration", metadata: ["migration": "\(id)", "phase": "\(machine.phase.rawValue)"])
            launch(machine, journaled: decoded)
        }
        await sweepStreams()
    }

    /// What a restarted migration compares its switch with: the current map's generation, or for
    /// a shard-key change its table's layout generation.
    private func publishedGeneration(_ plan: MigrationPlan) async throws -> UInt64? {
        guard let relayout = plan.relayout else { return try await metadata.currentShardMap()?.generation }
        return try await metadata.tables().first { $0.name == relayout.from.name }?.layoutGeneration
    }

    /// Closes change streams whose migration is not running: it ended, or its journal is gone,
    /// or the process died between ending it and closing them. A leaked PostgreSQL slot keeps
    /// every WAL segment after it, until the disk fills.
    @discardableResult
    public func sweepStreams() async -> [String] {
        let running = Set(runners.withLock { $0.keys.map { ChangeStreamID(migration: $0) } })
        var closed: [String] = []
        for shard in router.registeredShards {
            guard let store = router.store(shard) else { continue }
            do {
                for stream in try await store.changeStreams() where !running.contains(stream) {
                    try await store.closeChangeStream(stream)
                    closed.append("\(shard)/\(stream)")
                }
            } catch {
                logger.warning("could not sweep change streams", metadata: ["shard": "\(shard)", "error": "\(error)"])
            }
        }
        if !closed.isEmpty {
            logger.notice(
                "closed change streams of migrations that are not running", metadata: ["streams": "\(closed.joined(separator: ", "))"])
        }
        return closed
    }

    /// A migration's state, running or ended, with how its shards capture changes.
    public func status(_ id: String) async -> MigrationStatus? {
        guard var status = await machineStatus(id) else { return nil }
        let plan = status.machine.plan
        let strategy = status.machine.settings.strategyInForce
        if strategy.writesSecond || strategy.records, let fleetWide = try? await fleet.secondWrites(migration: id) {
            status.secondWrites = fleetWide
        }
        for shard in Set(plan.moves.flatMap { [$0.source, $0.target] }) {
            status.changeCapture[shard] = try? await router.store(shard)?.changeCapture()
        }
        return status
    }

    private func machineStatus(_ id: String) async -> MigrationStatus? {
        if let runner = runners.withLock({ $0[id]?.runner }) {
            var status = MigrationStatus(machine: await runner.state, error: await runner.error, pauses: await runner.writePauses)
            let throttle = await runner.throttleState
            status.throttleChunkRows = throttle.chunkRows
            status.throttleReason = throttle.reason
            status.cutoverSteps = await runner.lastCutoverSteps
            status.cutoverPauseMicros = await runner.lastCutoverPauseMicros
            status.shadow = shadowStats(id)
            status.secondWrites = secondWriteStats(id)
            status.served = servedStats(id)
            return status
        }
        if var status = finished.withLock({ $0[id] }) {
            status.shadow = shadowStats(id)
            status.secondWrites = secondWriteStats(id)
            status.served = servedStats(id)
            return status
        }
        guard let journal = try? await metadata.migrations().first(where: { $0.id == id })?.journal,
            let machine = try? MigrationJournal.decode(journal)
        else { return nil }
        return MigrationStatus(machine: machine, error: machine.failure, pauses: [])
    }

    /// Why each migration whose journal could not be read stands failed, by id.
    public var unreadableJournals: [String: String] { unreadable.withLock { $0 } }

    /// Every migration, oldest first.
    public func list() async throws -> [MigrationStatus] {
        var result: [MigrationStatus] = []
        for (id, _) in try await metadata.migrations() {
            if let status = await status(id) { result.append(status) }
        }
        return result
    }

    /// Every migration's state machine, oldest first, from one read of the journals and without
    /// asking shards or other routers anything: for views polled every second.
    public func machines() async throws -> [MigrationStatus] {
        var result: [MigrationStatus] = []
        for (id, journal) in try await metadata.migrations() {
            if runners.withLock({ $0[id] }) != nil || finished.withLock({ $0[id] }) != nil {
                if let status = await machineStatus(id) { result.append(status) }
            } else if let machine = try? MigrationJournal.decode(journal) {
                result.append(MigrationStatus(machine: machine, error: machine.failure, pauses: []))
            }
        }
        return result
    }

    /// Sends an operator command to a running migration.
    public func command(_ id: String, _ event: MigrationEvent) async throws -> MigrationOutcome {
        try requireLeader()
        guard let runner = runners.withLock({ $0[id]?.runner }) else {
            if let reason = unreadable.withLock({ $0[id] }) { return .rejected(reason) }
            if await status(id) != nil { return .rejected("migration \(id) has ended") }
            throw RouterError(.notFound, "unknown_migration", "no migration \(id)")
        }
        return await runner.command(event)
    }

    /// Waits until migration `id` ends (for tests and the demo).
    public func wait(_ id: String) async {
        let task = runners.withLock { $0[id]?.task }
        await task?.value
    }

    /// Stops every runner (process shutdown); journals let the next start resume.
    public func stopAll() async {
        let tasks = runners.withLock { Array($0.values.map(\.task)) }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    private func shadowStats(_ id: String) -> ShadowReads.Stats? {
        let stats = router.canary.stats
        return stats.migration == id ? stats : nil
    }

    private func servedStats(_ id: String) -> ServedReads.Stats? {
        let stats = router.served.stats
        return stats.migration == id ? stats : nil
    }

    private func secondWriteStats(_ id: String) -> SecondWrites.Stats? {
        let stats = router.secondWrites.stats
        return stats.migration == id ? stats : nil
    }

    /// Runs `machine`, whose journal holds `journaled` (nil: the machine as it stands).
    private func launch(_ machine: MigrationStateMachine, journaled: MigrationStateMachine? = nil) {
        let runner = MigrationRunner(
            machine: machine, stores: router, routers: fleet, metadata: metadata, logger: logger, wallMillis: wallMillis, hook: hook,
            journaled: journaled ?? machine, metrics: metrics)
        let id = machine.id
        let task = Task {
            await runner.run()
            let state = await runner.state
            var status = MigrationStatus(machine: state, error: await runner.error, pauses: await runner.writePauses)
            status.cutoverSteps = await runner.lastCutoverSteps
            status.cutoverPauseMicros = await runner.lastCutoverPauseMicros
            // A runner stopped by a lost lease has not ended: its status is then the journal's,
            // which the process that took over keeps current.
            self.finished.withLock { $0[id] = state.phase.isTerminal ? status : nil }
            _ = self.runners.withLock { $0.removeValue(forKey: id) }
            if state.phase.isTerminal {
                self.logger.info("migration ended", metadata: ["migration": "\(id)", "phase": "\(state.phase.rawValue)"])
            } else {
                self.metrics.forget(id)
                self.logger.notice("migration stopped here", metadata: ["migration": "\(id)", "phase": "\(state.phase.rawValue)"])
            }
        }
        runners.withLock { $0[id] = (runner, task) }
    }

    private func rowHashes(_ map: ShardMap) async throws -> [UInt64] {
        var hashes: [UInt64] = []
        for shard in map.shards {
            guard let store = router.store(shard) else { continue }
            for table in router.tableNames {
                try await store.forEachChunk(table: table) { rows in hashes += rows.filter { !$0.isDeleted }.map(\.hash) }
            }
        }
        return hashes
    }
}

/// A migration as status reports show it.
public struct MigrationStatus: Sendable {
    /// The machine: phase, plan, progress.
    public let machine: MigrationStateMachine
    /// The last error, if a step is being retried or the migration failed.
    public let error: String?
    /// Write pauses of its cutovers.
    public let pauses: [PauseSummary]
    /// The copy chunk the throttle allows now, and why it is slowing down, if it is.
    public var throttleChunkRows: Int?
    public var throttleReason: String?
    /// How long each step of the latest cutover took (while the runner is live).
    public var cutoverSteps: [CutoverStepTiming] = []
    /// The latest cutover's whole pause, hold to release, in microseconds (while the runner is
    /// live): the steps plus the rounds' bookkeeping between them.
    public var cutoverPauseMicros: UInt64?
    /// What this router's canary shadow reads found (while this process has seen the canary).
    public var shadow: ShadowReads.Stats?
    /// What the routers' second writes (or records) did: every router's, as of its latest
    /// report, in `status`; this router's alone where the reports could not be read.
    public var secondWrites: SecondWrites.Stats?
    /// This process's router's reads served by the new owners alone, when it served for it.
    public var served: ServedReads.Stats?
    /// How each shard of the plan captures changes ("logical decoding …", "triggers …"): a
    /// PostgreSQL server without `wal_level = logical` falls back to triggers, which cost every
    /// write a changelog row.
    public var changeCapture: [ShardID: String] = [:]

    /// How long the migration has waited for approval at `now`, in milliseconds.
    public func waitingMillis(now: UInt64) -> UInt64? {
        machine.awaitingSince.map { now > $0 ? now - $0 : 0 }
    }
}
