extension API {
    /// One phase of a strategy's table, as a dry run shows what the migration will do.
    public struct PlanStep: Codable, Sendable, Hashable {
        /// The phase.
        public var phase: String
        /// Where routers send the moving ranges' writes meanwhile (`owner`, `dual`).
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
        /// Where writes go (`owner`, `dual`).
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

    /// `dual_write`'s second writes, as this server's router counted them.
    public struct SecondWrites: Codable, Sendable, Hashable {
        /// Whether writes to the moving ranges go to both owners now.
        public var active: Bool
        /// Second writes the new owners took.
        public var written: Int
        /// Second writes that failed and were queued for retries.
        public var queued: Int
        /// Second writes that failed and were left to the changelog.
        public var unqueued: Int

        enum CodingKeys: String, CodingKey {
            case active, written, queued, unqueued
        }

        /// A router's second-write figures.
        public init(active: Bool, written: Int, queued: Int, unqueued: Int) {
            self.active = active
            self.written = written
            self.queued = queued
            self.unqueued = unqueued
        }
    }
}
