/// The lifecycle of one migration as a pure state machine: events in, work out, no I/O and no
/// clock reads (the caller passes `now`). It is the migrator's only brain: what to do next, how
/// fast, in what order results count, when to retry, abort a cutover or give up are all decided
/// here, so the seeded simulation tests exactly what production runs. It is `Codable` so the
/// runner can persist it after every round; a restarted runner reloads it, feeds `.restarted`,
/// and carries on from `nextRound`.
///
/// Entry and exit criteria, phase by phase:
/// - `preparing`: on `start`; exits when the sources' changelog positions are recorded (taken
///   before the first copy, so every later change is replayed).
/// - `copying`: every (move, table) is scanned in chunks while the changelog is tailed; exits
///   when every scan reached its range's end.
/// - `catching_up`: tailing only; exits when every source's backlog and lag are under the
///   thresholds.
/// - `verifying`: every move compared in sub-ranges at the old owners' changelog positions (the
///   new owners drained to exactly those), differing sub-ranges diffed row by row and repaired
///   from the old owners, then compared again; exits when every move is clean and every
///   aggregate check agrees. A difference left after `maxRepairPasses` fails the migration.
/// - `canary`: tailing continues while routers shadow-read a growing share of the moving ranges'
///   reads from the new owners (`canarySteps`, each `canaryStepMillis`); a step passes once its
///   time is up and the runner has checked every router's shadow reads up to its end; exits
///   after the last step when caught up. A real shadow mismatch fails the migration with reads
///   back on the old owners; resuming verifies (and repairs) again, then restarts the canary.
/// - `cutting_over`: hold → fence → drain → publish → release; exits when held writes go on.
/// - `baking`: reverse replication keeps the old owners current; exits when the bake time is up.
/// - `cleaning_up`: the point of no return; moved rows are deleted from the old owners, then
///   tombstones older than the horizon are purged from every shard of the new map (no copy of
///   this migration can arrive any more, and only one migration runs at a time).
///
/// A phase named in `settings.gates` is not entered until an operator approves it: the machine
/// stays in the phase before, keeping replication live, with `awaitingApproval` set. An approval
/// holds for the rest of the migration.
public struct MigrationStateMachine: Hashable, Sendable, Codable {
    /// The migration's id.
    public let id: String
    /// What moves where.
    public let plan: MigrationPlan
    /// The tables copied (tables created later reach the targets through the changelog).
    public let tables: [TableName]
    /// Thresholds and sizes; an operator may change the copy ceiling and the bake of a running
    /// migration (`.adjust`), everything else is fixed when it is created.
    public internal(set) var settings: MigrationSettings

    /// The current phase.
    public internal(set) var phase: MigrationPhase = .planned
    /// The phase a pause or failure interrupted.
    public internal(set) var interrupted: MigrationPhase?
    /// Why the migration failed, if it did.
    public internal(set) var failure: String?
    /// Per (move, table) copy progress.
    public internal(set) var copies: [CopyTask]
    /// Old owners' changelogs, applied to the new owners.
    public internal(set) var forward: [ShardID: StreamProgress] = [:]
    /// The change streams were closed while the migration stood failed before the switch
    /// (optional so journals written before it existed still decode): resuming starts again
    /// from preparing, since changes made meanwhile were never captured.
    public internal(set) var streamsReleased: Bool?
    /// New owners' changelogs, applied back to the old owners after the switch.
    public internal(set) var reverse: [ShardID: StreamProgress] = [:]
    /// How far the routers' recorded writes were replayed on the new owners (`traffic_replay`).
    public internal(set) var replayed: ReplayProgress?
    /// The cutover in progress (forward, or backward during a rollback).
    public internal(set) var cutover: CutoverProgress?
    /// How many cutovers were started.
    public internal(set) var cutoverAttempts = 0
    /// Whether routers are holding writes for this migration right now.
    public internal(set) var holding = false
    /// Whether the old owners carry fences of this migration that must come off on abort.
    public internal(set) var sourcesFenced = false
    /// Whether the new map was published.
    public internal(set) var switched = false
    /// When baking ends (milliseconds).
    public internal(set) var bakeUntil: UInt64?
    /// Deletions of moved rows: from the old owners at cleanup, from the new ones on rollback.
    public internal(set) var deletions: [DeletionTask] = []
    /// Tombstone purges of cleanup, one per shard of the new map.
    public internal(set) var purges: [PurgeTask] = []
    /// Tombstones with a version below this are purged at cleanup (set when cleanup starts).
    public internal(set) var tombstoneHorizon: UInt64?
    /// The rollback in progress.
    public internal(set) var rollback: RollbackStep?
    /// What kept the last verification from passing (nothing when it passed).
    public var mismatches: [String] { verification?.problems ?? [] }
    /// The last verification's report.
    public internal(set) var verification: VerificationReport?
    /// How many verifications ran.
    public internal(set) var verifications = 0
    /// Whether the verification of the current `verifying` phase passed.
    public internal(set) var verified = false
    /// The canary of reads, while it runs.
    public internal(set) var canary: CanaryProgress?
    /// Whether every canary step passed since the last verification (an aborted cutover then
    /// goes back to verifying and on to the cutover without a second canary).
    public internal(set) var canaryPassed = false
    /// The phase the migration waits to enter until an operator approves it.
    public internal(set) var awaitingApproval: MigrationPhase?
    /// Since when it waits (milliseconds of wall time).
    public internal(set) var awaitingSince: UInt64?
    /// Gates the operator approved.
    public internal(set) var approved: Set<MigrationPhase> = []
    /// Write pauses of completed cutovers, in milliseconds.
    public internal(set) var pausesMillis: [UInt64] = []
    /// Every phase entered and when (milliseconds), oldest first; the last 64.
    public internal(set) var phaseLog: [PhaseEntry] = []
    /// The canary the routers' directive carries, as this migration last showed it.
    public internal(set) var routesShown: RouteDirective.Shown?
    /// Whether the routers' directive may differ from `routesShown` (after a restart: the
    /// process that died may have changed it without a journal), so it is shown again.
    public internal(set) var routesStale: Bool?
    /// When the routers' directive last changed to `routesShown` (milliseconds): a step that
    /// settles waits from here for every router to follow it.
    public internal(set) var routesShownAt: UInt64?
    /// How fast the migration goes and how it retries right now: figures of this process's
    /// rounds, not progress (a restart starts them afresh, and they are not worth a journal).
    public internal(set) var pacing: MigrationPacing?
    /// Rows the plan was predicted to copy (for progress and ETA), if known.
    public var estimatedRows: Int?
    /// Bytes of keys and bodies the plan was predicted to copy, if known.
    public var estimatedBytes: Int?
    /// When the migration was created (milliseconds), for rates and ETA.
    public var createdAt: UInt64?

    /// A planned migration; nothing happens until `start`.
    public init(id: String, plan: MigrationPlan, tables: [TableName], settings: MigrationSettings) {
        self.id = id
        self.plan = plan
        self.tables = tables
        self.settings = settings
        // One move alone would copy one chunk at a time; cut into slices, the reads of one slice
        // overlap the writes of another (what copyParallelism is for).
        let slices = max(1, settings.copyParallelism / max(1, plan.moves.count * tables.count))
        if plan.relayout != nil {
            // A shard-key change copies each shard's whole table, in slices of the hash space: its
            // moves are the map's ranges (hundreds on a ring, a few rows each), and a task per
            // range would spend the copy on rounds. Each task names a move of its shard.
            let perShard = max(1, settings.copyParallelism / max(1, plan.sources.count * tables.count))
            self.copies = plan.sources.flatMap { source -> [CopyTask] in
                guard let move = plan.moves.firstIndex(where: { $0.source == source }) else { return [] }
                return tables.flatMap { table in
                    HashRange.full.split(into: perShard).map {
                        CopyTask(move: move, table: table, slice: $0, cursor: nil, rows: 0, done: false)
                    }
                }
            }
            return
        }
        self.copies = plan.moves.indices.flatMap { move in
            tables.flatMap { table in
                let range = plan.moves[move].range
                let parts = slices > 1 ? range.split(into: slices) : [range]
                return parts.map { part in
                    CopyTask(move: move, table: table, slice: parts.count > 1 ? part : nil, cursor: nil, rows: 0, done: false)
                }
            }
        }
    }

    /// One deletion of a move's rows from one shard, or of a whole table's (a layout a shard-key
    /// change left behind).
    public struct DeletionTask: Hashable, Sendable, Codable {
        /// Index into the plan's moves.
        public let move: Int
        /// The shard the rows are deleted from.
        public let shard: ShardID
        /// The table cleared and dropped, for a shard-key change (nil: the move's range of every
        /// table).
        public var table: TableName?
        /// Rows deleted so far.
        public var rows: Int
        /// Whether the range is empty now.
        public var done: Bool
    }

    /// A phase and when the machine entered it.
    public struct PhaseEntry: Hashable, Sendable, Codable {
        /// The phase entered.
        public let phase: MigrationPhase
        /// When, in milliseconds of wall time.
        public let at: UInt64
    }

    /// One shard's purge of tombstones past the horizon.
    public struct PurgeTask: Hashable, Sendable, Codable {
        /// The shard purged.
        public let shard: ShardID
        /// Tombstones purged so far.
        public var rows: Int
        /// Whether no tombstone past the horizon is left.
        public var done: Bool
    }

    /// The steps of a rollback, in order.
    public enum RollbackStep: String, Hashable, Sendable, Codable {
        /// Before the switch: take the fences off the old owners.
        case removeFences
        /// Let held writes go (to whichever owner the current map names).
        case releaseHold
        /// Before the switch, after dual writes: fence the copies at the new map's generation, so
        /// a router that has not heard of the rollback cannot write a second time behind it.
        case fenceCopies
        /// Then publish the old layout at that generation: routers on it write no second writes,
        /// and the next migration's routers write at a generation the fences let through.
        case republish
        /// After the switch: the cutover protocol backwards, fed by reverse replication.
        case reverseCutover
        /// Delete the copies from the new owners.
        case deleteCopies
        /// Housekeeping, then `rolled_back`.
        case finish
    }

    /// The machine without the figures that change on every changelog read (backlog counts and
    /// lag ages): two machines with equal projections differ in nothing a restart needs, so a
    /// round that only refreshed those figures need not be journaled. A stale backlog (`.max`)
    /// is kept, because it decides when catching up may end.
    public var durableProjection: MigrationStateMachine {
        var copy = self
        func strip(_ streams: inout [ShardID: StreamProgress]) {
            for key in streams.keys {
                streams[key]?.lagMillis = 0
                if streams[key]?.backlog != .max { streams[key]?.backlog = 0 }
            }
        }
        strip(&copy.forward)
        strip(&copy.reverse)
        copy.pacing = nil
        return copy
    }

    /// Rows copied so far over every move.
    public var rowsCopied: Int { copies.reduce(0) { $0 + $1.rows } }

    /// Bytes of keys and bodies copied so far over every move.
    public var bytesCopied: Int { copies.reduce(0) { $0 + ($1.bytes ?? 0) } }

    /// The generation a rollback after the switch publishes (the old ranges, one generation on).
    public var rollbackGeneration: UInt64 { switchGeneration + 1 }

    /// The generation the switch puts in force: the new map's, or for a shard-key change the new
    /// layout's.
    public var switchGeneration: UInt64 { plan.relayout?.to.layoutGeneration ?? plan.target.generation }
}
