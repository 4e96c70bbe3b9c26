/// A unit of work the migrator must run; its result comes back as a `MigrationEvent`. Each item
/// carries everything the role that runs it needs besides the migration's fixed identity (its id,
/// plan and stores): roles never read the machine.
public enum MigrationWork: Hashable, Sendable {
    /// Create table storage on the targets; open the migration's change stream on every shard
    /// of the plan and read the sources' positions.
    case prepare(sources: [ShardID], targets: [ShardID])
    /// Copy the next chunk of `CopyTask` `task` from `move.source` to `move.target`.
    case copyChunk(task: Int, move: Move, table: TableName, after: ScanCursor?, limit: Int)
    /// Read `shard`'s changelog after `position` (up to `through` when given: a drain) and apply
    /// the changes of moving ranges to their other side (forward: source → target; reverse:
    /// target → source).
    case tail(ReplicationDirection, shard: ShardID, after: UInt64, through: UInt64?)
    /// Compare every move on both sides at consistent changelog positions, diff and repair what
    /// differs, compare again, and run the aggregate checks.
    case verify(VerificationRequest)
    /// Hold client writes to `ranges` in every router until `generation` is in force.
    case holdWrites([HashRange], generation: UInt64)
    /// Fence these ranges on these shards at `generation`, then read the changelog positions
    /// of `readPositions` (both sides of every move).
    case fence([ShardID: [HashRange]], generation: UInt64, readPositions: [ShardID])
    /// Make `map` the current shard map (already current counts as done).
    case publish(ShardMap)
    /// Let held writes go, to whatever owner the current map names.
    case releaseWrites
    /// Remove these fences (an aborted cutover, a rollback before the switch).
    case removeFences([ShardID: [HashRange]])
    /// Delete up to `limit` rows of every table in `range` from `shard` (no changelog entry).
    case deleteChunk(task: Int, shard: ShardID, range: HashRange, limit: Int)
    /// Delete up to `limit` rows of `table` from `shard`, and drop its storage once it is empty
    /// (a layout a shard-key change left behind; no changelog entry).
    case clearTable(task: Int, shard: ShardID, table: TableName, limit: Int)
    /// A shard-key change's hold: every router holds writes to `table` until it uses layout
    /// generation `layout`.
    case holdTable(TableName, layout: UInt64)
    /// Retire `tables` on every one of `shards` for layout generation `layout` (their client
    /// writes are refused from then on), reading each one's changelog position in the same
    /// transaction: a shard-key change's fence.
    case retire([TableName], layout: UInt64, shards: [ShardID])
    /// Take the retirement off `tables` on `shards` (an aborted switch, a rollback before it).
    case unretire([TableName], shards: [ShardID])
    /// Make `table` the table's layout in the metadata, replacing layout generation `replacing`.
    case publishLayout(TableDefinition, replacing: UInt64)
    /// Purge up to `limit` tombstones older than version `before` from every table of `shard`
    /// (no changelog entry).
    case purgeTombstones(task: Int, shard: ShardID, before: UInt64, limit: Int)
    /// Nothing to do before this wall time (bake, a throttle rest, a retry's backoff).
    case waitUntil(UInt64)
    /// Read what every router's shadow reads since `since` (the canary's start) found, up to wall
    /// time `upTo`: `shadowReadsChecked` when they are clean, else `shadowMismatch`.
    case checkShadowReads(since: UInt64, upTo: UInt64)
    /// Put `directive` in every router's directive (nil: routers route the moving ranges like
    /// any other).
    case showRoutes(RouteDirective?)
    /// Final housekeeping: purge the changelog entries the migration consumed, then report
    /// `finished`.
    case finish(purgeThrough: [ShardID: UInt64])
    /// Close the migration's change streams on every shard of the plan (a PostgreSQL slot keeps
    /// every WAL segment after it for as long as it exists) and drop its logs.
    case closeStreams
    /// Replay up to `limit` recorded writes after `after` from the migration's replay log on the
    /// new owners (the version rule of a copy), then forget them.
    case replay(after: UInt64, limit: Int)
    /// Retry up to `limit` queued second writes (`dual_write`) from the head of the migration's
    /// retry queue, oldest first, stopping at the first that fails again.
    case retrySecondWrites(limit: Int)
}

/// What a verification compares and how hard it tries.
public struct VerificationRequest: Hashable, Sendable {
    /// How far each old owner's changelog has been applied to the new owners.
    public var positions: [ShardID: UInt64]
    /// Sub-ranges per move, before the per-pass cap (`MigrationSettings.verifyParts`).
    public var subranges: Int
    /// Compare-and-repair passes before a difference is left unresolved.
    public var maxRepairPasses: Int
    /// Application-level checks.
    public var checks: [AggregateCheck]
    /// Whether routers may have written the new owners a second time (`dual_write`): a new
    /// owner's row ahead of the compared position is then a late second write, not a
    /// difference, when the old owner holds that version by now.
    public var secondWrites: Bool
    /// Whether the map switched before this verification (`write_new_read_old`, `routing_first`):
    /// the new owners, which take the client writes, are compared at their own changelog
    /// positions (`positions` are then the new owners'), the old owners drained to them by
    /// reverse replication, and a difference is repaired toward the newer version on either
    /// side, never by deleting (`RowDifference.repairAfterSwitch`).
    public var afterSwitch: Bool

    /// A request.
    public init(
        positions: [ShardID: UInt64], subranges: Int, maxRepairPasses: Int, checks: [AggregateCheck], secondWrites: Bool = false,
        afterSwitch: Bool = false
    ) {
        self.positions = positions
        self.subranges = subranges
        self.maxRepairPasses = maxRepairPasses
        self.checks = checks
        self.secondWrites = secondWrites
        self.afterSwitch = afterSwitch
    }

    /// Sub-ranges per move for a plan of `moves` moves over `tables` tables.
    public func parts(moves: Int, tables: Int) -> Int {
        MigrationSettings.verifyParts(subranges: subranges, moves: moves, tables: tables)
    }
}

/// What routers do to a migration's moving ranges now (saved in the routers' directive): the
/// strategy's write and read modes of the phase, and the canary's share of shadow reads.
public struct RouteDirective: Sendable, Hashable, Codable {
    /// The migration, so figures start over for a new one.
    public let migration: String
    /// Bumped by each verification: a canary halt lasts until the next epoch.
    public let epoch: Int
    /// The moves whose ranges are routed so.
    public let plan: MigrationPlan
    /// Where writes and reads of the moving ranges go.
    public let routes: RouteModes
    /// Share of the moving ranges' reads also read from the new owner and compared, in percent
    /// (0 outside the canary).
    public let shadowPercent: Double
    /// A new owner behind by a write this recent is lag, not a mismatch.
    public let lagAllowanceMillis: UInt64
    /// The share of the moving ranges' reads the new owners serve alone (`serving_reads`); nil
    /// outside it (optional, so directives saved before it existed still decode).
    public let serve: ReadServe?

    /// A directive.
    public init(
        migration: String, epoch: Int, plan: MigrationPlan, routes: RouteModes, shadowPercent: Double, lagAllowanceMillis: UInt64,
        serve: ReadServe? = nil
    ) {
        self.migration = migration
        self.epoch = epoch
        self.plan = plan
        self.routes = routes
        self.shadowPercent = shadowPercent
        self.lagAllowanceMillis = lagAllowanceMillis
        self.serve = serve
    }

    /// A read step: how much the new owners serve alone, and when a router sends reads back.
    public struct ReadServe: Sendable, Hashable, Codable {
        /// The share of the moving ranges' reads served by the new owners alone, in percent.
        public let percent: Double
        /// Sent back when more than this share of the served reads failed …
        public let maxErrorRate: Double
        /// … or when the served reads' p99 passes this multiple of the old path's.
        public let maxLatencyFactor: Double

        /// A read step.
        public init(percent: Double, maxErrorRate: Double, maxLatencyFactor: Double) {
            self.percent = percent
            self.maxErrorRate = maxErrorRate
            self.maxLatencyFactor = maxLatencyFactor
        }
    }

    /// The move whose range holds `hash`, while `generation` (the router's map) is before the
    /// switch: a mode about moving ranges applies to nothing once the new map is in force.
    public func moving(_ hash: UInt64, at generation: UInt64) -> Move? {
        generation < plan.target.generation ? plan.move(containing: hash) : nil
    }

    /// The move whose range holds `hash` once the map names its new owner `owner`: the switch is
    /// behind (a rollback that published the old layout again names the old owner, and this is
    /// nil), for the modes of the strategies that switch first.
    public func switched(_ hash: UInt64, owner: ShardID) -> Move? {
        guard let move = plan.move(containing: hash), move.target == owner else { return nil }
        return move
    }

    /// What a migration remembers of the directive it showed: the parts that change (its own
    /// id and plan do not), so its journal does not carry the plan twice.
    public struct Shown: Sendable, Hashable, Codable {
        public let epoch: Int
        public let routes: RouteModes
        public let shadowPercent: Double
        public let lagAllowanceMillis: UInt64
        public let serve: ReadServe?

        /// The changing parts of `directive`.
        public init(_ directive: RouteDirective) {
            epoch = directive.epoch
            routes = directive.routes
            shadowPercent = directive.shadowPercent
            lagAllowanceMillis = directive.lagAllowanceMillis
            serve = directive.serve
        }
    }
}

/// A fact the migrator learned, fed back into the machine.
public enum MigrationEvent: Hashable, Sendable {
    case start
    case prepared(positions: [ShardID: UInt64])
    /// `bytes` is what the chunk's keys and bodies weigh (as a range summary counts them), for
    /// progress only: a chunk redone after a crash counts again, like its rows.
    case chunkCopied(task: Int, last: ScanCursor?, rows: Int, done: Bool, bytes: Int = 0)
    case tailed(ReplicationDirection, shard: ShardID, position: UInt64, backlog: Int, lagMillis: UInt64)
    case verified(VerificationReport)
    /// A canary shadow read found a difference replication cannot explain.
    case shadowMismatch(String)
    /// A router stopped serving reads from the new owners (`serving_reads`): their error rate or
    /// latency passed the migration's threshold.
    case readsSentBack(String)
    /// Every router's shadow reads up to this wall time were checked and are clean.
    case shadowReadsChecked(upTo: UInt64)
    /// The routers' directive carries these routes (nil: none).
    case routesShown(RouteDirective?)
    case writesHeld
    case fenced(positions: [ShardID: UInt64])
    case published
    case writesReleased
    case fencesRemoved
    case chunkDeleted(task: Int, rows: Int, done: Bool)
    case tombstonesPurged(task: Int, rows: Int, done: Bool)
    case streamsClosed
    /// Recorded writes replayed through log position `through` (`applied` of them), and
    /// `waiting` still recorded after it.
    case replayed(through: UInt64, applied: Int, waiting: Int)
    /// A pass over the retry queue: `applied` second writes retried (or found obsolete), `waiting`
    /// left in the queue, and the error that stopped the pass, if one did.
    case secondWritesRetried(applied: Int, waiting: Int, error: String?)
    case finished
    /// Time passed (a wait ended): deadlines are checked.
    case tick
    /// A work item failed; retried with backoff, and `MigrationStateMachine.maxStepFailures` in a
    /// row fail the migration.
    case stepFailed(String)
    case pause
    case resume
    case rollback
    /// The operator approves the gate the migration waits at (nil), or a named gate ahead of time.
    case approve(MigrationPhase?)
    /// The operator changes the copy ceiling or the bake of a migration that has not ended.
    case adjust(MigrationAdjustment)
    case failed(reason: String)
    /// The process restarted from the journal; `publishedGeneration` is the current map's
    /// generation (nil: none could be read), which tells whether a cutover that was in flight
    /// had switched.
    case restarted(publishedGeneration: UInt64?)
}

/// What the machine made of an event.
public enum MigrationOutcome: Hashable, Sendable {
    /// The event was recorded.
    case accepted
    /// An operator command that does not apply now; nothing changed.
    case rejected(String)
}
