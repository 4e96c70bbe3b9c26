/// The phases of a migration. `planned → preparing → copying → catching_up → verifying →
/// canary → cutting_over → baking → cleaning_up → done`, plus `paused`, `rolling_back`,
/// `rolled_back` and `failed`.
public enum MigrationPhase: String, Hashable, Sendable, Codable, CaseIterable {
    case planned, preparing
    /// `dual_write`: routers write each client write to both owners before any copy starts.
    case dualWriting = "dual_writing"
    /// `traffic_replay`: routers record each client write to a moving range before any copy starts.
    case recording
    case copying
    case catchingUp = "catching_up"
    case verifying
    case canary
    /// `write_new_read_old`, after the switch and a clean verification: routers serve a growing
    /// share of the moving ranges' reads from the new owners alone (`read_steps`).
    case servingReads = "serving_reads"
    case cuttingOver = "cutting_over"
    case baking
    case cleaningUp = "cleaning_up"
    case done, paused
    case rollingBack = "rolling_back"
    case rolledBack = "rolled_back"
    case failed

    /// Whether the migration has ended.
    public var isTerminal: Bool { self == .done || self == .rolledBack }

    /// Phases an operator may ask to approve before the migration enters them. Baking is not
    /// one: it begins in the same step that lets held writes go, which must not wait on a person
    /// (`before_cleanup` is the gate after the switch).
    public static let gateable: [MigrationPhase] = [
        .dualWriting, .recording, .copying, .catchingUp, .verifying, .canary, .servingReads, .cuttingOver, .cleaningUp,
    ]

    /// The gate's name in the API: `before_cutover`, `before_cleanup`, or `before_` and the phase.
    public var gateName: String {
        switch self {
        case .cuttingOver: "before_cutover"
        case .cleaningUp: "before_cleanup"
        default: "before_\(rawValue)"
        }
    }

    /// The phase a gate name stands before; `nil` for an unknown name or a phase with no gate.
    public init?(gate name: String) {
        guard let phase = Self.gateable.first(where: { $0.gateName == name || "before_\($0.rawValue)" == name }) else { return nil }
        self = phase
    }
}

/// How far a migration replayed the writes routers recorded (`traffic_replay`).
public struct ReplayProgress: Hashable, Sendable, Codable {
    /// The replay log's position replayed through: every entry at or before it is on the new owners.
    public var position: UInt64
    /// Recorded writes replayed so far.
    public var applied: Int

    /// Progress.
    public init(position: UInt64, applied: Int) {
        self.position = position
        self.applied = applied
    }
}

/// Knobs of one migration, fixed when it is created except for the copy ceiling and the bake
/// (`MigrationAdjustment`).
public struct MigrationSettings: Hashable, Sendable, Codable {
    /// Rows per copy chunk (the throttle may use fewer).
    public var chunkRows: Int
    /// Catch-up is done when every source's backlog is at most this many changes …
    public var maxLagChanges: Int
    /// … and its oldest unapplied change is at most this old.
    public var maxLagMillis: UInt64
    /// How long the old owners stay current through reverse replication before cleanup.
    public var bakeMillis: UInt64
    /// Rows deleted per cleanup chunk.
    public var cleanupChunkRows: Int
    /// Cutover attempts before the migration fails instead of trying again.
    public var maxCutoverAttempts: Int
    /// How long writes may be held before the switch; past it the attempt is aborted (fences
    /// off, held writes released to the old owners) and tried again after catching up. Optional
    /// so that journals written before it existed still decode; nil is `defaultCutoverBudgetMillis`.
    public var cutoverBudgetMillis: UInt64?
    /// Copy chunks run per round, each of a different (move, table).
    public var copyParallelism: Int
    /// A ceiling on copied rows per second, if the operator set one.
    public var maxRowsPerSecond: Int?
    /// Slow the copy when the foreground p99 exceeds this multiple of its baseline (nil: off).
    public var latencyFactor: Double?
    /// Cleanup purges tombstones whose version is older than cleanup's start minus this much.
    /// The margin covers routers whose clocks run behind: a tombstone must outlive any write
    /// or copy that could still carry an older version of its row.
    public var tombstoneGraceMillis: UInt64
    /// Each move is compared in this many sub-ranges; only differing ones are diffed row by row.
    public var verifySubranges: Int
    /// Compare-and-repair passes before a verification that still differs fails the migration.
    public var maxRepairPasses: Int
    /// Application-level checks compared between the old and the new owners.
    public var checks: [AggregateCheck]
    /// Percentages of the moving ranges' reads shadow-read from the new owners, in order
    /// (empty: no canary, verifying leads straight to the cutover).
    public var canarySteps: [Double]
    /// How long each canary step lasts.
    public var canaryStepMillis: UInt64
    /// Percentages of the moving ranges' reads served by the new owners alone, in order, once a
    /// strategy that switched first has verified them (`write_new_read_old`); nil or empty: the
    /// reads move at once when the verification is clean. Optional, like the ones below, so
    /// journals written before gradual read serving still decode.
    public var readSteps: [Double]?
    /// How long each read step lasts; nil is `defaultReadStepMillis`.
    public var readStepMillis: UInt64?
    /// A router sends the reads back when more than this share of the ones it served from a new
    /// owner failed; nil is `defaultMaxReadErrorRate`.
    public var maxReadErrorRate: Double?
    /// … or when the new owners' read p99 passes this multiple of the old path's; nil is
    /// `defaultMaxReadLatencyFactor`.
    public var maxReadLatencyFactor: Double?
    /// Phases the migration waits before until an operator approves.
    public var gates: Set<MigrationPhase>
    /// How long a migration that failed before the switch keeps its change streams, so that a
    /// resume soon after continues where it stopped; past it they are closed (a PostgreSQL slot
    /// pins WAL) and a resume starts again from preparing. Optional so that journals written
    /// before it existed still decode; nil is `defaultFailedStreamRetentionMillis`.
    public var failedStreamRetentionMillis: UInt64?
    /// How data moves (optional so that journals written before strategies existed still
    /// decode; nil is `cdc_backfill`).
    public var strategy: MigrationStrategy?
    /// How long a mode shown to routers takes to reach every one (a step that settles waits
    /// this long after showing its routes): twice the routers' re-read interval (`--refresh-ms`,
    /// one second by default). Nil is `MigrationPacing.routerFollowMillis`.
    public var routerFollowMillis: UInt64?

    /// The router follow window in force.
    public var routerFollow: UInt64 { routerFollowMillis ?? MigrationPacing.routerFollowMillis }

    /// One second: a write pause clients notice but do not time out on.
    public static let defaultCutoverBudgetMillis: UInt64 = 1_000

    /// The cutover budget in force.
    public var cutoverBudget: UInt64 { cutoverBudgetMillis ?? Self.defaultCutoverBudgetMillis }

    /// Thirty seconds per read step, like a canary step.
    public static let defaultReadStepMillis: UInt64 = 30_000
    /// One read in a hundred may fail before the reads go back.
    public static let defaultMaxReadErrorRate = 0.01
    /// The new owners may be twice as slow as the old path before the reads go back.
    public static let defaultMaxReadLatencyFactor = 2.0

    /// The read steps in force.
    public var readStepsInForce: [Double] { readSteps ?? [] }

    /// The strategy in force.
    public var strategyInForce: MigrationStrategy { strategy ?? .cdcBackfill }

    /// Fifteen minutes: time to look at a failure and resume cheaply, not time to fill a disk.
    public static let defaultFailedStreamRetentionMillis: UInt64 = 900_000

    /// Settings with production-minded defaults: a ten-minute bake (reverse replication keeps
    /// rollback possible while the new owners prove themselves under real traffic), a canary of
    /// 1, 10, 50 and 100 % of reads held 30 s each, and no gates.
    public init(
        chunkRows: Int = 1_000, maxLagChanges: Int = 100, maxLagMillis: UInt64 = 1_000, bakeMillis: UInt64 = 600_000,
        cleanupChunkRows: Int = 1_000, maxCutoverAttempts: Int = 5, copyParallelism: Int = 8, maxRowsPerSecond: Int? = nil,
        latencyFactor: Double? = 2, tombstoneGraceMillis: UInt64 = 600_000, verifySubranges: Int = 256, maxRepairPasses: Int = 3,
        checks: [AggregateCheck] = [], canarySteps: [Double] = [1, 10, 50, 100], canaryStepMillis: UInt64 = 30_000,
        gates: Set<MigrationPhase> = [], failedStreamRetentionMillis: UInt64? = nil, cutoverBudgetMillis: UInt64? = nil,
        strategy: MigrationStrategy? = nil
    ) {
        self.chunkRows = chunkRows
        self.maxLagChanges = maxLagChanges
        self.maxLagMillis = maxLagMillis
        self.bakeMillis = bakeMillis
        self.cleanupChunkRows = cleanupChunkRows
        self.maxCutoverAttempts = maxCutoverAttempts
        self.copyParallelism = max(1, copyParallelism)
        self.maxRowsPerSecond = maxRowsPerSecond
        self.latencyFactor = latencyFactor
        self.tombstoneGraceMillis = tombstoneGraceMillis
        self.verifySubranges = max(1, verifySubranges)
        self.maxRepairPasses = max(1, maxRepairPasses)
        self.checks = checks
        self.canarySteps = canarySteps
        self.canaryStepMillis = canaryStepMillis
        self.gates = gates.intersection(MigrationPhase.gateable)
        self.failedStreamRetentionMillis = failedStreamRetentionMillis
        self.cutoverBudgetMillis = cutoverBudgetMillis
        self.strategy = strategy
    }
}

/// Which way changes flow: old owners to new before the switch, new to old during bake.
public enum ReplicationDirection: String, Hashable, Sendable, Codable {
    case forward, reverse
}

/// The durable progress of copying one table of one move.
public struct CopyTask: Hashable, Sendable, Codable {
    /// Index into the plan's moves.
    public let move: Int
    /// The table being copied.
    public let table: TableName
    /// The slice of the move this task copies (nil: all of it). A plan with fewer moves than
    /// copy tasks may run at once copies each move in equal slices side by side; optional so
    /// journals written before slices existed still decode.
    public var slice: HashRange?
    /// The last row copied; the next chunk starts after it.
    public var cursor: ScanCursor?
    /// Rows copied so far (a redone chunk counts again).
    public var rows: Int
    /// Whether the scan reached the end of the range.
    public var done: Bool
    /// Bytes of keys and bodies copied so far (a redone chunk counts again); optional so
    /// journals written before it existed still decode.
    public var bytes: Int? = nil
}

/// How far one changelog has been applied.
public struct StreamProgress: Hashable, Sendable, Codable {
    /// The last changelog position applied.
    public var position: UInt64
    /// Changes behind the head of the changelog at the last read.
    public var backlog: Int
    /// Age of the oldest unapplied change at the last read, in milliseconds.
    public var lagMillis: UInt64
}

/// The steps of the cutover protocol (DESIGN.md), in order; a later step compares greater.
public enum CutoverStep: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    /// Routers hold new writes to the moving ranges.
    case hold
    /// The old owners refuse writes below the new generation.
    case fence
    /// The new owners apply every change up to the position read after the fence.
    case drain
    /// The new map is committed.
    case publish
    /// Held writes go to the new owners.
    case release

    public static func < (lhs: CutoverStep, rhs: CutoverStep) -> Bool {
        let order = allCases
        return (order.firstIndex(of: lhs) ?? 0) < (order.firstIndex(of: rhs) ?? 0)
    }
}

/// Where a cutover (forward, or backward during rollback) stands.
public struct CutoverProgress: Hashable, Sendable, Codable {
    /// The step waiting to be done.
    public var step: CutoverStep
    /// The changelog positions of the fenced shards read right after fencing.
    public var drainTo: [ShardID: UInt64]
    /// When writes were held (milliseconds), for the pause figure.
    public var heldAt: UInt64?
}
