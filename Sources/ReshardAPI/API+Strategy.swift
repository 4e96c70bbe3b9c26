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
}
