/// How a migration moves data while clients use it (DESIGN.md, "Strategies"). A strategy is a
/// table of phases, each with what the routers do to the moving ranges meanwhile; the machine's
/// exit criteria and work per phase are shared, so a strategy is data, not a code path.
public enum MigrationStrategy: String, Hashable, Sendable, Codable, CaseIterable {
    /// Chunked snapshot copy plus changelog catch-up; writes stay on the old owner until the
    /// cutover. The default.
    case cdcBackfill = "cdc_backfill"
    /// The router writes each client write to the old owner, then to the new one with the same
    /// version; backfill copies the rest.
    case dualWrite = "dual_write"
    /// Writes switch to the new owner first; reads take the newer of both sides while a repair
    /// worker copies what the new owner lacks.
    case writeNewReadOld = "write_new_read_old"
    /// The map switches first; a read the new owner misses is answered by the old one and the
    /// row copied on access; a background mover copies the rest.
    case routingFirst = "routing_first"
    /// The router records client writes to the moving ranges and they are replayed on the new
    /// owner after a backfill, reads shadow-compared until it answers like the old one.
    case trafficReplay = "traffic_replay"

    /// The strategy's table, in the order the migration runs it (paused, failed, rolling back
    /// and the ends are outside every table). Every strategy shares the exit criteria of a phase
    /// (`MigrationStateMachine.advance`); what differs is the order and the routers' modes.
    ///
    /// The changelog stays on in every strategy as the safety net: a router that has not yet
    /// read the directive, or died between its two writes, wrote only the old owner, and the
    /// changelog carries that write across before the cutover's drain (so correctness never
    /// depends on every router following a mode, only speed and load do).
    public var steps: [StrategyStep] {
        switch self {
        case .cdcBackfill:
            [
                Self.prepare(.unchanged),
                Self.copy(.unchanged),
                Self.catchUp(.unchanged),
                Self.verify(.unchanged),
                Self.canary(.unchanged),
                Self.cutover,
                Self.bake,
                Self.cleanup,
            ]
        case .dualWrite:
            [
                Self.prepare(.unchanged),
                StrategyStep(
                    .dualWriting, .dualWrites,
                    does:
                        "shows every router the dual-write mode: each client write to a moving range goes to the old owner, then to the new owner at the same version; a second write that fails is queued and retried",
                    until: "the mode has been shown for two router re-reads (2 s), so writes reach both owners", settles: true),
                Self.copy(.dualWrites),
                Self.catchUp(.dualWrites),
                // Compared at one changelog position, a new owner must not run ahead of it: second
                // writes pause while it is compared (the changelog carries writes meanwhile).
                Self.verify(.unchanged, settles: true),
                Self.canary(.dualWrites),
                Self.cutover,
                Self.bake,
                Self.cleanup,
            ]
        case .trafficReplay:
            [
                Self.prepare(.unchanged),
                StrategyStep(
                    .recording, .recordWrites,
                    does:
                        "shows every router the recording mode: each client write to a moving range goes to the old owner and is then recorded, with its version, in the migration's replay log",
                    until: "the mode has been shown for two router re-reads (2 s), so every write is recorded", settles: true),
                Self.copy(.recordWrites),
                StrategyStep(
                    .catchingUp, .recordWrites,
                    does: "replays the recorded writes on the new owners, in the order recorded, and applies the old owners' changelogs",
                    until: "the replay log and every changelog are within max_lag_changes (and max_lag_ms)"),
                Self.verify(.recordWrites),
                StrategyStep(
                    .canary, .recordWrites,
                    does: "goes on replaying while routers shadow-read each canary step's share of reads from the new owners and compare",
                    until: "the new owners answered like the old ones in every step"),
                Self.cutover,
                Self.bake,
                Self.cleanup,
            ]
        case .writeNewReadOld:
            Self.switchedFirst(
                .newestReads, copy: "repairs: copies every row the new owners lack from the old owners under the version rule",
                reads: "reads take the newer of both owners", servesReadsGradually: true)
        case .routingFirst:
            Self.switchedFirst(
                .redirectedReads, copy: "moves the rest: copies every row the new owners lack from the old owners under the version rule",
                reads: "a read the new owner misses is answered by the old owner and the row copied on access")
        }
    }

    /// The table of the strategies that switch first (`write_new_read_old`, `routing_first`):
    /// the map switches as soon as the streams are open, so writes go to the new owners from then
    /// on, and what differs is how reads find rows not yet copied. Their modes are shown before
    /// the switch and settle before the hold, so every router that routes by the new map reads
    /// and writes as they say (a router learns the directive with every newer map it adopts).
    ///
    /// After the switch the old owners are fenced and reverse replication keeps them current with
    /// every write the new owners take, so rollback is the usual cutover backwards at any phase
    /// before cleanup; verification then runs the other way (new owners against old owners,
    /// drained by reverse replication), and the canary is not run: the new owners serve reads
    /// from the switch on, and the verification proves them complete before reads depend on them
    /// alone (baking routes by the map).
    ///
    /// `write_new_read_old` can also move its reads gradually (`serving_reads`, with `read_steps`):
    /// once verified, the new owners alone answer a growing share of the reads, and the rest
    /// still take the newer of both; a router that sees the new owners fail or slow down past the
    /// thresholds sends its reads back at once, and the migration fails with reads where they were
    /// before the step. (`routing_first` reads the new owners first from the switch on, so it has
    /// nothing to move.)
    private static func switchedFirst(
        _ routes: RouteModes, copy: String, reads: String, servesReadsGradually: Bool = false
    ) -> [StrategyStep] {
        let serving = StrategyStep(
            .servingReads, routes,
            does:
                "routers serve each read step's share of reads from the new owners alone and the rest from the newer of both, sending reads back when the new owners' error rate or latency passes max_read_error_rate or max_read_latency_factor",
            until: "every read step passed (skipped without read_steps)")
        return [
            prepare(.unchanged),
            StrategyStep(
                .catchingUp, routes,
                does:
                    "shows every router the modes of after the switch (writes to a new owner copy the old owner's row first when it lacks it; \(reads)) and applies the changes made since the streams opened",
                until: "the modes have been shown for two router re-reads (2 s) and every backlog is under max_lag_changes", settles: true),
            StrategyStep(
                .cuttingOver, routes,
                does: "holds writes, fences the old owners, drains, publishes the new map, releases: writes go to the new owners",
                until: "the new map is published and held writes released"),
            StrategyStep(
                .copying, routes, does: "\(copy), while reverse replication keeps the old owners current; \(reads)",
                until: "every chunk of every table is copied"),
            StrategyStep(
                .verifying, routes,
                does:
                    "compares the new owners against the old ones drained by reverse replication, repairs what differs toward the newer version (never by deleting), runs the checks",
                until: "the comparison is clean: reads then move to the new owners alone"),
        ] + (servesReadsGradually ? [serving] : []) + [bake, cleanup]
    }

    private static func prepare(_ routes: RouteModes) -> StrategyStep {
        StrategyStep(
            .preparing, routes, does: "creates the tables on the new owners and opens a change stream on every shard of the plan",
            until: "every stream is open and its position read")
    }

    private static func copy(_ routes: RouteModes) -> StrategyStep {
        StrategyStep(
            .copying, routes, does: "copies the moving ranges chunk by chunk under the version rule, paced by the throttle",
            until: "every chunk of every table is copied")
    }

    private static func catchUp(_ routes: RouteModes) -> StrategyStep {
        StrategyStep(
            .catchingUp, routes, does: "applies the old owners' changelogs to the new owners",
            until: "every old owner's backlog is under max_lag_changes and max_lag_ms")
    }

    private static func verify(_ routes: RouteModes, settles: Bool = false) -> StrategyStep {
        StrategyStep(
            .verifying, routes, does: "compares both sides at consistent positions, repairs what differs, runs the checks",
            until: "the comparison is clean", settles: settles)
    }

    private static func canary(_ routes: RouteModes) -> StrategyStep {
        StrategyStep(
            .canary, routes, does: "shadow-reads each canary step's share of reads from the new owners and compares",
            until: "every step passed with no mismatch")
    }

    // Writes are held during the switch whatever the mode, and after it a router's map names
    // the new owner, so a second write has no one to go to.
    private static let cutover = StrategyStep(
        .cuttingOver, .unchanged, does: "holds writes, fences the old owners, drains, publishes the new map, releases",
        until: "the new map is published and held writes released")

    private static let bake = StrategyStep(
        .baking, .unchanged, does: "replicates the new owners' changes back to the old owners, so rollback stays possible",
        until: "bake_ms has passed")

    private static let cleanup = StrategyStep(
        .cleaningUp, .unchanged, does: "deletes the moved rows from the old owners and purges old tombstones",
        until: "nothing moved is left on an old owner")

    /// Whether routers write new owners a second time in some step of it.
    public var writesSecond: Bool { steps.contains { $0.routes.writes == .dual } }

    /// Whether routers record client writes for replay in some step of it.
    public var records: Bool { steps.contains { $0.routes.writes == .record } }

    /// Whether migrations may use it yet.
    public var isAvailable: Bool { !steps.isEmpty }

    /// Whether its reads can move to the new owners step by step (`read_steps`).
    public var servesReadsGradually: Bool { steps.contains { $0.phase == .servingReads } }

    /// Whether the map switches before the data is copied (`write_new_read_old`, `routing_first`).
    public var switchesFirst: Bool { steps.first { $0.phase == .cuttingOver || $0.phase == .copying }?.phase == .cuttingOver }

    /// The phase that follows `phase` in the table, skipping what `skip` leaves out (a canary
    /// without steps); nil after the last (the migration is done) or for a phase not in it.
    public func phase(after phase: MigrationPhase, skip: Set<MigrationPhase> = []) -> MigrationPhase? {
        let phases = steps.map(\.phase)
        guard let index = phases.firstIndex(of: phase) else { return nil }
        return phases[(index + 1)...].first { !skip.contains($0) }
    }

    /// The table's row for `phase`, if the strategy has one.
    public func step(_ phase: MigrationPhase) -> StrategyStep? { steps.first { $0.phase == phase } }
}

/// One row of a strategy's table.
public struct StrategyStep: Hashable, Sendable {
    /// The phase.
    public let phase: MigrationPhase
    /// What routers do to the moving ranges during it.
    public let routes: RouteModes
    /// What the migrator does in it.
    public let does: String
    /// Its exit criterion.
    public let until: String
    /// Whether its work waits until every router follows its modes (two re-reads of the
    /// directive after it was shown).
    public let settles: Bool

    init(_ phase: MigrationPhase, _ routes: RouteModes, does: String, until: String, settles: Bool = false) {
        self.phase = phase
        self.routes = routes
        self.does = does
        self.until = until
        self.settles = settles
    }
}

/// Where routers send the moving ranges' writes and reads during a phase, besides what every
/// strategy shares: the canary's shadow reads, and the cutover's hold of writes (the protocol's
/// own, not a mode).
public struct RouteModes: Hashable, Sendable, Codable {
    /// Where writes go.
    public enum Writes: String, Hashable, Sendable, Codable {
        /// To the owner the current map names.
        case owner
        /// To the owner; while that is still a move's old owner, then to its new owner at the
        /// version the old owner gave (`dual_write`). A failed second write is queued for retries.
        case dual
        /// To the owner; while that is still a move's old owner, the write (with its version) is
        /// then recorded in the migration's replay log, which the migrator replays on the new
        /// owner (`traffic_replay`).
        case record
        /// To the owner; once that is a move's new owner and it has never seen the row, the old
        /// owner's row is copied onto it first, so the write's version is above the old one
        /// (versions are assigned above the stored row's) and no read or copy can put the older
        /// row back over it (`write_new_read_old`, `routing_first`).
        case copyFirst = "copy_first"
    }

    /// Where reads come from.
    public enum Reads: String, Hashable, Sendable, Codable {
        /// From the owner the current map names.
        case owner
        /// From both owners once the map names a move's new owner, the newer version winning (a
        /// tombstone too): the new owner holds every write since the switch, the old owner what
        /// has not been copied yet (`write_new_read_old`).
        case newest
        /// From the new owner once the map names it; a key it has never seen is read from the
        /// old owner and the row copied onto the new one, so the keys clients use move first
        /// (`routing_first`). A tombstone on the new owner answers, so a copy never resurrects.
        case fallback
    }

    /// Where writes go.
    public let writes: Writes
    /// Where reads come from.
    public let reads: Reads

    /// A mode.
    public init(writes: Writes, reads: Reads) {
        self.writes = writes
        self.reads = reads
    }

    /// The map's owner for both: what routers do with no migration.
    public static let unchanged = RouteModes(writes: .owner, reads: .owner)
    /// Writes to both owners, reads from the map's owner.
    public static let dualWrites = RouteModes(writes: .dual, reads: .owner)
    /// Writes to the map's owner and recorded for replay, reads from the map's owner.
    public static let recordWrites = RouteModes(writes: .record, reads: .owner)
    /// After the switch: writes to the new owner copying the old row first, reads from the newer of both.
    public static let newestReads = RouteModes(writes: .copyFirst, reads: .newest)
    /// After the switch: writes to the new owner copying the old row first, reads from the new
    /// owner falling back to the old one and copying on access.
    public static let redirectedReads = RouteModes(writes: .copyFirst, reads: .fallback)
}
