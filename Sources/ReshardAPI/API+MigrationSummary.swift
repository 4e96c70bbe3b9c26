extension API {
    /// A migration in brief, as `GET /v1/migrations` lists it; also the whole answer of
    /// `GET /v1/migrations/{id}` for a migration whose journal the server cannot read (the
    /// schema `UnreadableMigration`: kind `unknown`, phase `failed`, the reason in `error`).
    public struct MigrationSummary: Codable, Sendable, Hashable {
        /// The migration's id.
        public var id: String
        /// `add_shard`, `remove_shard`, `rebalance`, `move_range`; `unknown` when unreadable.
        public var kind: String
        /// The phase (`copying`, `done`, `failed` …).
        public var phase: String
        /// How many moves its plan has.
        public var moves: Int
        /// Rows copied so far (a redone chunk counts again).
        public var rowsCopied: Int
        /// Rows the plan expected to copy, once known.
        public var rowsEstimated: Int?
        /// The last error, if a step is being retried or the migration failed.
        public var error: String?
        /// When it was created, milliseconds of wall time; nil when unknown (an unreadable journal).
        public var startedMs: UInt64?
        /// When it ended `done` or `rolled_back`, milliseconds of wall time; nil while it has not
        /// (a failed migration has not ended: it can be resumed or rolled back).
        public var endedMs: UInt64?

        enum CodingKeys: String, CodingKey {
            case id, kind, phase, moves
            case rowsCopied = "rows_copied"
            case rowsEstimated = "rows_estimated"
            case error
            case startedMs = "started_ms"
            case endedMs = "ended_ms"
        }

        /// A migration in brief.
        public init(
            id: String, kind: String, phase: String, moves: Int, rowsCopied: Int, rowsEstimated: Int?, error: String?,
            startedMs: UInt64? = nil, endedMs: UInt64? = nil
        ) {
            self.id = id
            self.kind = kind
            self.phase = phase
            self.moves = moves
            self.rowsCopied = rowsCopied
            self.rowsEstimated = rowsEstimated
            self.error = error
            self.startedMs = startedMs
            self.endedMs = endedMs
        }

        /// A migration whose journal cannot be read: failed, with why; nothing else is known.
        public static func unreadable(id: String, reason: String) -> MigrationSummary {
            MigrationSummary(id: id, kind: "unknown", phase: "failed", moves: 0, rowsCopied: 0, rowsEstimated: nil, error: reason)
        }

        /// Writes every member, `null` for an absent estimate or error (the schema requires them).
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(kind, forKey: .kind)
            try container.encode(phase, forKey: .phase)
            try container.encode(moves, forKey: .moves)
            try container.encode(rowsCopied, forKey: .rowsCopied)
            try container.encodeNullable(rowsEstimated, forKey: .rowsEstimated)
            try container.encodeNullable(error, forKey: .error)
            try container.encodeNullable(startedMs, forKey: .startedMs)
            try container.encodeNullable(endedMs, forKey: .endedMs)
        }
    }

    /// `GET /v1/migrations`: every migration, oldest first, then those whose journal cannot be read.
    public struct MigrationList: Codable, Sendable, Hashable {
        /// The migrations.
        public var migrations: [MigrationSummary]

        enum CodingKeys: String, CodingKey {
            case migrations
        }

        /// A list of migrations.
        public init(migrations: [MigrationSummary]) {
            self.migrations = migrations
        }
    }

    /// How far one change stream has been applied.
    public struct StreamProgress: Codable, Sendable, Hashable {
        /// The last changelog position applied.
        public var position: UInt64
        /// Changes behind the head at the last read; nil when not read yet.
        public var backlog: Int?
        /// Age of the oldest unapplied change, milliseconds.
        public var lagMs: UInt64

        enum CodingKeys: String, CodingKey {
            case position, backlog
            case lagMs = "lag_ms"
        }

        /// A stream's progress.
        public init(position: UInt64, backlog: Int?, lagMs: UInt64) {
            self.position = position
            self.backlog = backlog
            self.lagMs = lagMs
        }

        /// Writes every member, `null` for a backlog not read yet.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(position, forKey: .position)
            try container.encodeNullable(backlog, forKey: .backlog)
            try container.encode(lagMs, forKey: .lagMs)
        }
    }

    /// When a migration entered a phase.
    public struct PhaseMark: Codable, Sendable, Hashable {
        /// The phase.
        public var phase: String
        /// When it began, milliseconds of wall time.
        public var atMs: UInt64

        enum CodingKeys: String, CodingKey {
            case phase
            case atMs = "at_ms"
        }

        /// A phase and when it began.
        public init(phase: String, atMs: UInt64) {
            self.phase = phase
            self.atMs = atMs
        }
    }

    /// How long one step of the latest cutover took.
    public struct CutoverStepTiming: Codable, Sendable, Hashable {
        /// `hold`, `fence`, `drain`, `publish` or `release`.
        public var step: String
        /// Its duration, milliseconds with three decimals.
        public var ms: Double

        enum CodingKeys: String, CodingKey {
            case step, ms
        }

        /// A step and its duration.
        public init(step: String, ms: Double) {
            self.step = step
            self.ms = ms
        }
    }

    /// The copy throttle: the chunk it allows now and why it slows down, if it does.
    public struct Throttle: Codable, Sendable, Hashable {
        /// Rows per chunk allowed now; nil while nothing is known.
        public var chunkRows: Int?
        /// Why it slows the copy down; nil when it does not.
        public var reason: String?
        /// The operator's ceiling on copied rows per second in force; nil for none.
        public var maxRowsPerSecond: Int?

        enum CodingKeys: String, CodingKey {
            case chunkRows = "chunk_rows"
            case reason
            case maxRowsPerSecond = "max_rows_per_second"
        }

        /// A throttle's state.
        public init(chunkRows: Int?, reason: String?, maxRowsPerSecond: Int? = nil) {
            self.chunkRows = chunkRows
            self.reason = reason
            self.maxRowsPerSecond = maxRowsPerSecond
        }

        /// Writes every member, `null` when absent.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeNullable(chunkRows, forKey: .chunkRows)
            try container.encodeNullable(reason, forKey: .reason)
            try container.encodeNullable(maxRowsPerSecond, forKey: .maxRowsPerSecond)
        }
    }

    /// How long the writes held by one cutover waited.
    public struct WritePause: Codable, Sendable, Hashable {
        /// How many writes were held.
        public var writesHeld: Int
        /// Median wait, milliseconds.
        public var p50Ms: Double
        /// 99th percentile wait, milliseconds.
        public var p99Ms: Double
        /// Longest wait, milliseconds.
        public var maxMs: Double

        enum CodingKeys: String, CodingKey {
            case writesHeld = "writes_held"
            case p50Ms = "p50_ms"
            case p99Ms = "p99_ms"
            case maxMs = "max_ms"
        }

        /// A cutover's write-pause figures.
        public init(writesHeld: Int, p50Ms: Double, p99Ms: Double, maxMs: Double) {
            self.writesHeld = writesHeld
            self.p50Ms = p50Ms
            self.p99Ms = p99Ms
            self.maxMs = maxMs
        }
    }

    /// The gate a migration waits at for an operator's approval, and since when.
    public struct AwaitingApproval: Codable, Sendable, Hashable {
        /// The gate (`before_cutover` …).
        public var gate: String
        /// When the wait began, milliseconds of wall time.
        public var sinceMs: UInt64?
        /// How long it has waited, milliseconds.
        public var waitingMs: UInt64?

        enum CodingKeys: String, CodingKey {
            case gate
            case sinceMs = "since_ms"
            case waitingMs = "waiting_ms"
        }

        /// A wait at `gate`.
        public init(gate: String, sinceMs: UInt64?, waitingMs: UInt64?) {
            self.gate = gate
            self.sinceMs = sinceMs
            self.waitingMs = waitingMs
        }

        /// Writes every member, `null` for unknown times.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(gate, forKey: .gate)
            try container.encodeNullable(sinceMs, forKey: .sinceMs)
            try container.encodeNullable(waitingMs, forKey: .waitingMs)
        }
    }
}
