extension API {
    /// `GET /v1/dashboard`: what the dashboard at `/` shows, open without the admin token.
    ///
    /// It is an allow-list of figures that say how the cluster and a migration are doing and
    /// nothing about the data or where it lives: hash ranges, shard names, counts, rates,
    /// latencies, phases and times. Shard addresses, table rows, keys (top keys, mismatched or
    /// shadow-read keys), error texts (they may quote either) and aggregate sums stay behind the
    /// token, on the admin routes.
    public struct Dashboard: Codable, Sendable, Hashable {
        /// This build's version.
        public var version: String
        /// When the figures were taken, milliseconds since 1970.
        public var nowMs: UInt64
        /// The generation of the shard map this router routes by.
        public var generation: UInt64
        /// This router's name.
        public var router: String
        /// Every range of the map and its owner, sorted.
        public var ranges: [RangeAssignment]
        /// Every shard, by name.
        public var shards: [Shard]
        /// The migration under way (the newest one not ended), else the last one to end.
        public var migration: Migration?
        /// Every migration, oldest first, in brief.
        public var history: [Run]
        /// The routers heard from lately, this one first.
        public var routers: [Router]
        /// This router's foreground latency per second, the last five minutes, oldest first.
        public var latency: [Second]

        enum CodingKeys: String, CodingKey {
            case version
            case nowMs = "now_ms"
            case generation, router, ranges, shards, migration, history, routers, latency
        }

        /// A dashboard from its parts.
        public init(
            version: String, nowMs: UInt64, generation: UInt64, router: String, ranges: [RangeAssignment], shards: [Shard],
            migration: Migration?, history: [Run], routers: [Router], latency: [Second]
        ) {
            self.version = version
            self.nowMs = nowMs
            self.generation = generation
            self.router = router
            self.ranges = ranges
            self.shards = shards
            self.migration = migration
            self.history = history
            self.routers = routers
            self.latency = latency
        }
    }
}

extension API.Dashboard {
    /// One shard's figures.
    public struct Shard: Codable, Sendable, Hashable {
        /// The shard's name.
        public var id: String
        /// `sqlite` or `postgres`.
        public var backend: String
        /// Live rows over every table (refreshed every few seconds).
        public var rows: Int
        /// Bytes of keys and bodies over every table (refreshed with `rows`).
        public var bytes: Int
        /// Share of the hash space it owns, 0…1.
        public var fraction: Double
        /// Calls to the shard per second through this router, over the last complete seconds (a
        /// client request makes one or more: a write may read first, a canary reads both owners).
        public var requestsPerSecond: Double
        /// Their 99th percentile, milliseconds; nil without requests.
        public var p99Ms: Double?
        /// How the shard captures changes (`logical_decoding`, `triggers`, `changelog`); nil when
        /// it could not be asked.
        public var changeCapture: String?
        /// The replication slots of its database (PostgreSQL; none elsewhere).
        public var slots: [Slot]

        enum CodingKeys: String, CodingKey {
            case id, backend, rows, bytes, fraction
            case requestsPerSecond = "requests_per_second"
            case p99Ms = "p99_ms"
            case changeCapture = "change_capture"
            case slots
        }

        /// A shard's figures.
        public init(
            id: String, backend: String, rows: Int, bytes: Int, fraction: Double, requestsPerSecond: Double, p99Ms: Double?,
            changeCapture: String?, slots: [Slot] = []
        ) {
            self.slots = slots
            self.id = id
            self.backend = backend
            self.rows = rows
            self.bytes = bytes
            self.fraction = fraction
            self.requestsPerSecond = requestsPerSecond
            self.p99Ms = p99Ms
            self.changeCapture = changeCapture
        }
    }

    /// A replication slot and the WAL it keeps the server from recycling.
    public struct Slot: Codable, Sendable, Hashable {
        /// Its name (Reshard's are `reshard_<migration>_<database hash>`).
        public var name: String
        /// Whether a session reads it now.
        public var active: Bool
        /// WAL bytes from its restart point to the server's position; nil before it has one.
        public var retainedBytes: UInt64?

        enum CodingKeys: String, CodingKey {
            case name, active
            case retainedBytes = "retained_bytes"
        }

        /// A slot.
        public init(name: String, active: Bool, retainedBytes: UInt64?) {
            self.name = name
            self.active = active
            self.retainedBytes = retainedBytes
        }
    }

    /// One range a migration moves: the same four members as an event's move.
    public typealias Move = API.EventMove

    /// The migration under way, without what could quote the data (error texts, keys).
    public struct Migration: Codable, Sendable, Hashable {
        /// Its id.
        public var id: String
        /// Its kind.
        public var kind: String
        /// How its data moves.
        public var strategy: String
        /// Its phase.
        public var phase: String
        /// Whether a step failed lately (the reason is on the admin route).
        public var erring: Bool
        /// When each phase began, oldest first.
        public var phases: [API.PhaseMark]
        /// The generation it started from and the one its cutover publishes.
        public var fromGeneration: UInt64
        /// The generation its cutover publishes.
        public var toGeneration: UInt64
        /// The ranges it moves.
        public var moves: [Move]
        /// Rows copied so far.
        public var rowsCopied: Int
        /// Rows the plan expected to copy, once known.
        public var rowsEstimated: Int?
        /// Bytes of keys and bodies copied so far.
        public var bytesCopied: Int
        /// Bytes the plan expected to copy, once known.
        public var bytesEstimated: Int?
        /// Copy tasks finished.
        public var copyTasksDone: Int
        /// Copy tasks in all.
        public var copyTasks: Int
        /// Changes the new owners have yet to apply, summed over the old owners (nil: unknown).
        public var lagChanges: Int?
        /// The largest replication lag of the old owners' streams, milliseconds.
        public var lagMs: UInt64
        /// The copy throttle: its chunk and why it is where it is.
        public var throttle: API.Throttle
        /// Each move's last verification (counts only), when one ran.
        public var verification: [API.MoveVerification]
        /// Whether the last verification passed, when one ran.
        public var verified: Bool?
        /// The canary's steps and where it is.
        public var canary: API.CanaryState
        /// What the shadow reads found (counts only; the compared keys stay on the admin route).
        public var shadowReads: API.ShadowReads?
        /// The gate it waits at, if it does.
        public var awaitingApproval: API.AwaitingApproval?
        /// Its gates, by name.
        public var gates: [String]
        /// Those approved so far.
        public var approved: [String]
        /// The step of the cutover under way.
        public var cutoverStep: String?
        /// Per cutover, how long the writes it held waited.
        public var writePauses: [API.WritePause]
        /// How long the bake lasts, milliseconds.
        public var bakeMs: UInt64
        /// When the bake ends, once it began.
        public var bakeUntilMs: UInt64?

        enum CodingKeys: String, CodingKey {
            case id, kind, strategy, phase, erring, phases
            case fromGeneration = "from_generation"
            case toGeneration = "to_generation"
            case moves
            case rowsCopied = "rows_copied"
            case rowsEstimated = "rows_estimated"
            case bytesCopied = "bytes_copied"
            case bytesEstimated = "bytes_estimated"
            case copyTasksDone = "copy_tasks_done"
            case copyTasks = "copy_tasks"
            case lagChanges = "lag_changes"
            case lagMs = "lag_ms"
            case throttle, verification, verified, canary
            case shadowReads = "shadow_reads"
            case awaitingApproval = "awaiting_approval"
            case gates, approved
            case cutoverStep = "cutover_step"
            case writePauses = "write_pauses"
            case bakeMs = "bake_ms"
            case bakeUntilMs = "bake_until_ms"
        }

        /// The dashboard's view of a migration's full status, with the moves it makes and the
        /// bytes it copied of those expected.
        public init(
            _ detail: API.MigrationDetail, moves: [Move], verification: [API.MoveVerification], bytesCopied: Int, bytesEstimated: Int?
        ) {
            self.bytesCopied = bytesCopied
            self.bytesEstimated = bytesEstimated
            id = detail.id
            kind = detail.kind
            strategy = detail.strategy
            phase = detail.phase
            erring = detail.error != nil
            phases = detail.phases
            fromGeneration = detail.fromGeneration
            toGeneration = detail.toGeneration
            self.moves = moves
            rowsCopied = detail.rowsCopied
            rowsEstimated = detail.rowsEstimated
            copyTasksDone = detail.copyTasksDone
            copyTasks = detail.copyTasks
            let backlogs = detail.forward.values.map(\.backlog)
            lagChanges = backlogs.contains(nil) ? nil : backlogs.reduce(0) { $0 + ($1 ?? 0) }
            lagMs = detail.forward.values.map(\.lagMs).max() ?? 0
            throttle = detail.throttle
            self.verification = verification
            verified = detail.verification?.passed
            canary = detail.canary
            shadowReads = detail.shadowReads.map {
                var counts = $0
                counts.recent = []
                return counts
            }
            awaitingApproval = detail.awaitingApproval
            gates = detail.gates
            approved = detail.approved
            cutoverStep = detail.cutoverStep
            writePauses = detail.writePauses
            bakeMs = detail.bakeMs
            bakeUntilMs = detail.bakeUntilMs
        }
    }

    /// A migration in brief, for the history.
    public struct Run: Codable, Sendable, Hashable {
        /// Its id.
        public var id: String
        /// Its kind.
        public var kind: String
        /// Its phase now.
        public var phase: String
        /// When it began, milliseconds since 1970.
        public var startedMs: UInt64?
        /// When it ended, if it did.
        public var endedMs: UInt64?
        /// Rows it copied.
        public var rowsCopied: Int

        enum CodingKeys: String, CodingKey {
            case id, kind, phase
            case startedMs = "started_ms"
            case endedMs = "ended_ms"
            case rowsCopied = "rows_copied"
        }

        /// A migration in brief.
        public init(id: String, kind: String, phase: String, startedMs: UInt64?, endedMs: UInt64?, rowsCopied: Int) {
            self.id = id
            self.kind = kind
            self.phase = phase
            self.startedMs = startedMs
            self.endedMs = endedMs
            self.rowsCopied = rowsCopied
        }
    }

    /// A router heard from lately.
    public struct Router: Codable, Sendable, Hashable {
        /// Its name.
        public var name: String
        /// The map generation it routed by when it last reported.
        public var generation: UInt64?
        /// Whether its process runs the migrations (nil: it runs no migrator).
        public var leader: Bool?
        /// How long ago it reported, milliseconds.
        public var ageMs: UInt64

        enum CodingKeys: String, CodingKey {
            case name, generation, leader
            case ageMs = "age_ms"
        }

        /// A router.
        public init(name: String, generation: UInt64?, leader: Bool?, ageMs: UInt64) {
            self.name = name
            self.generation = generation
            self.leader = leader
            self.ageMs = ageMs
        }
    }

    /// One second of foreground latency.
    public struct Second: Codable, Sendable, Hashable {
        /// The second's start, milliseconds since 1970.
        public var atMs: UInt64
        /// Requests that ended in it.
        public var requests: UInt64
        /// Median, milliseconds.
        public var p50Ms: Double
        /// 99th percentile, milliseconds.
        public var p99Ms: Double
        /// The slowest, milliseconds.
        public var maxMs: Double

        enum CodingKeys: String, CodingKey {
            case atMs = "at_ms"
            case requests
            case p50Ms = "p50_ms"
            case p99Ms = "p99_ms"
            case maxMs = "max_ms"
        }

        /// A second.
        public init(atMs: UInt64, requests: UInt64, p50Ms: Double, p99Ms: Double, maxMs: Double) {
            self.atMs = atMs
            self.requests = requests
            self.p50Ms = p50Ms
            self.p99Ms = p99Ms
            self.maxMs = maxMs
        }
    }
}
