extension API {
    /// One phase of a strategy's table, as a dry run shows what the migration will do.
    public struct PlanStep: Codable, Sendable, Hashable {
        /// The phase.
        public var phase: String
        /// Where routers send the moving ranges' writes meanwhile (`owner`, `dual`, `record`).
        public var writes: String
        /// Where they read them from (`owner`).
        public var reads: String
        /// What the migrator does in it.
        public var does: String
        /// When it ends.
        public var until: String

        enum CodingKeys: String, CodingKey {
            case phase, writes, reads, does, until
        }

        /// A phase of the table.
        public init(phase: String, writes: String, reads: String, does: String, until: String) {
            self.phase = phase
            self.writes = writes
            self.reads = reads
            self.does = does
            self.until = until
        }
    }

    /// What routers do to a migration's moving ranges now.
    public struct Routes: Codable, Sendable, Hashable {
        /// Where writes go (`owner`, `dual`, `record`).
        public var writes: String
        /// Where reads come from (`owner`).
        public var reads: String
        /// Share of the moving ranges' reads shadow-read from the new owners, percent.
        public var shadowPercent: Double

        enum CodingKeys: String, CodingKey {
            case writes, reads
            case shadowPercent = "shadow_percent"
        }

        /// Routes in force.
        public init(writes: String, reads: String, shadowPercent: Double) {
            self.writes = writes
            self.reads = reads
            self.shadowPercent = shadowPercent
        }
    }

    /// `dual_write`'s second writes: the routers' (every router's, as of its latest report), and
    /// the migration's retry queue.
    public struct SecondWrites: Codable, Sendable, Hashable {
        /// Whether a router writes the moving ranges to both owners now.
        public var active: Bool
        /// Second writes the new owners took.
        public var written: Int
        /// Second writes that failed and were queued for retries.
        public var queued: Int
        /// Second writes that failed and were left to the changelog.
        public var unqueued: Int
        /// Failed second writes (of every router) waiting in the retry queue.
        public var waiting: Int
        /// Queued second writes the migrator retried.
        public var retried: Int
        /// Whether retries keep failing, so the waiting writes are left for reconciliation (the
        /// changelog still carries them; verification proves the result).
        public var reconcile: Bool
        /// Why the last retry pass stopped, while passes fail.
        public var retryError: String?

        enum CodingKeys: String, CodingKey {
            case active, written, queued, unqueued, waiting, retried, reconcile
            case retryError = "retry_error"
        }

        /// Second-write figures.
        public init(
            active: Bool, written: Int, queued: Int, unqueued: Int, waiting: Int, retried: Int, reconcile: Bool, retryError: String?
        ) {
            self.active = active
            self.written = written
            self.queued = queued
            self.unqueued = unqueued
            self.waiting = waiting
            self.retried = retried
            self.reconcile = reconcile
            self.retryError = retryError
        }

        /// Writes every member, `null` for no retry error.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(active, forKey: .active)
            try container.encode(written, forKey: .written)
            try container.encode(queued, forKey: .queued)
            try container.encode(unqueued, forKey: .unqueued)
            try container.encode(waiting, forKey: .waiting)
            try container.encode(retried, forKey: .retried)
            try container.encode(reconcile, forKey: .reconcile)
            try container.encodeNullable(retryError, forKey: .retryError)
        }
    }

    /// `traffic_replay`: the writes the routers recorded (every router's, as of its latest
    /// report), and the migration's replay.
    public struct Replay: Codable, Sendable, Hashable {
        /// Client writes recorded in the replay log.
        public var recorded: Int
        /// Client writes that could not be recorded (left to the changelog).
        public var unrecorded: Int
        /// Recorded writes (of every router) replayed on the new owners.
        public var replayed: Int
        /// Recorded writes waiting to be replayed, as the last replay read them; nil before one.
        public var waiting: Int?
        /// The replay log's position replayed through.
        public var position: UInt64

        enum CodingKeys: String, CodingKey {
            case recorded, unrecorded, replayed, waiting, position
        }

        /// Replay figures.
        public init(recorded: Int, unrecorded: Int, replayed: Int, waiting: Int?, position: UInt64) {
            self.recorded = recorded
            self.unrecorded = unrecorded
            self.replayed = replayed
            self.waiting = waiting
            self.position = position
        }

        /// Writes every member, `null` for an unknown backlog.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(recorded, forKey: .recorded)
            try container.encode(unrecorded, forKey: .unrecorded)
            try container.encode(replayed, forKey: .replayed)
            try container.encodeNullable(waiting, forKey: .waiting)
            try container.encode(position, forKey: .position)
        }
    }

    /// `write_new_read_old` with `read_steps`: the read steps, where they are, and what this
    /// server's router served from the new owners alone.
    public struct ReadServing: Codable, Sendable, Hashable {
        /// The percentages served, in order (empty: reads move at once after verification).
        public var steps: [Double]
        /// How long each step lasts.
        public var stepMs: UInt64
        /// The current step while reads are served step by step.
        public var step: Int?
        /// The share served now, in percent.
        public var percent: Double?
        /// The thresholds that send reads back.
        public var maxErrorRate: Double
        public var maxLatencyFactor: Double
        /// Whether this router serves a share now.
        public var active: Bool
        /// Reads sent to the new owners alone, failed ones included, and those that failed.
        public var served: Int
        public var errors: Int
        /// Reads that took the old path (both owners) meanwhile.
        public var oldPath: Int
        /// p99 of the served reads and of the old path, milliseconds.
        public var servedP99Ms: Double?
        public var oldPathP99Ms: Double?
        /// Why this router sent its reads back, if it did.
        public var sentBack: String?

        enum CodingKeys: String, CodingKey {
            case steps
            case stepMs = "step_ms"
            case step, percent
            case maxErrorRate = "max_error_rate"
            case maxLatencyFactor = "max_latency_factor"
            case active, served, errors
            case oldPath = "old_path"
            case servedP99Ms = "served_p99_ms"
            case oldPathP99Ms = "old_path_p99_ms"
            case sentBack = "sent_back"
        }

        /// Read-serving figures.
        public init(
            steps: [Double], stepMs: UInt64, step: Int?, percent: Double?, maxErrorRate: Double, maxLatencyFactor: Double, active: Bool,
            served: Int, errors: Int, oldPath: Int, servedP99Ms: Double?, oldPathP99Ms: Double?, sentBack: String?
        ) {
            self.steps = steps
            self.stepMs = stepMs
            self.step = step
            self.percent = percent
            self.maxErrorRate = maxErrorRate
            self.maxLatencyFactor = maxLatencyFactor
            self.active = active
            self.served = served
            self.errors = errors
            self.oldPath = oldPath
            self.servedP99Ms = servedP99Ms
            self.oldPathP99Ms = oldPathP99Ms
            self.sentBack = sentBack
        }

        /// Writes every member, `null` for what holds nothing.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(steps, forKey: .steps)
            try container.encode(stepMs, forKey: .stepMs)
            try container.encodeNullable(step, forKey: .step)
            try container.encodeNullable(percent, forKey: .percent)
            try container.encode(maxErrorRate, forKey: .maxErrorRate)
            try container.encode(maxLatencyFactor, forKey: .maxLatencyFactor)
            try container.encode(active, forKey: .active)
            try container.encode(served, forKey: .served)
            try container.encode(errors, forKey: .errors)
            try container.encode(oldPath, forKey: .oldPath)
            try container.encodeNullable(servedP99Ms, forKey: .servedP99Ms)
            try container.encodeNullable(oldPathP99Ms, forKey: .oldPathP99Ms)
            try container.encodeNullable(sentBack, forKey: .sentBack)
        }
    }

    /// The strategies that switch first: rows this server's router copied onto a new owner on
    /// access (a write or a read that found it without them), and reads an old owner answered.
    public struct Redirects: Codable, Sendable, Hashable {
        public var copied: Int
        public var oldOwnerReads: Int

        enum CodingKeys: String, CodingKey {
            case copied
            case oldOwnerReads = "old_owner_reads"
        }

        /// Redirect figures.
        public init(copied: Int, oldOwnerReads: Int) {
            self.copied = copied
            self.oldOwnerReads = oldOwnerReads
        }
    }
}
