extension API {
    /// The canary: the share of the moving ranges' reads shadow-read from the new owners, step by step.
    public struct CanaryState: Codable, Sendable, Hashable {
        /// The steps' percentages, rising; empty when there is no canary.
        public var steps: [Double]
        /// How long each step lasts, milliseconds.
        public var stepMs: UInt64
        /// The current step's index, in the canary phase only.
        public var step: Int?
        /// The share of reads shadow-read now, percent.
        public var percent: Double?
        /// Whether the canary passed.
        public var passed: Bool
        /// When the current step's time is up, milliseconds of wall time, in the canary phase
        /// only (the step passes then, once every router's shadow reads up to it were checked).
        public var stepEndsMs: UInt64?

        enum CodingKeys: String, CodingKey {
            case steps
            case stepMs = "step_ms"
            case step, percent, passed
            case stepEndsMs = "step_ends_ms"
        }

        /// A canary's state.
        public init(steps: [Double], stepMs: UInt64, step: Int?, percent: Double?, passed: Bool, stepEndsMs: UInt64? = nil) {
            self.steps = steps
            self.stepMs = stepMs
            self.step = step
            self.percent = percent
            self.passed = passed
            self.stepEndsMs = stepEndsMs
        }

        /// Writes every member, `null` outside the canary phase for step, percent and the step's end.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(steps, forKey: .steps)
            try container.encode(stepMs, forKey: .stepMs)
            try container.encodeNullable(step, forKey: .step)
            try container.encodeNullable(percent, forKey: .percent)
            try container.encode(passed, forKey: .passed)
            try container.encodeNullable(stepEndsMs, forKey: .stepEndsMs)
        }
    }

    /// What one router's shadow reads found in the canary.
    public struct ShadowReads: Codable, Sendable, Hashable {
        /// Whether reads are being shadow-read now.
        public var active: Bool
        /// Whether a real mismatch stopped the canary in this router.
        public var halted: Bool
        /// The share shadow-read, percent.
        public var percent: Double
        /// Shadow reads done.
        public var reads: Int
        /// Both sides agreed.
        public var matches: Int
        /// The new owner was behind by a recent write.
        public var lag: Int
        /// Real differences.
        public var mismatches: Int
        /// New-owner reads that failed (the client still got the old owner's answer).
        public var errors: Int
        /// New-owner minus old-owner read latency, median, microseconds (may be negative).
        public var latencyDeltaP50Us: Int64?
        /// The same at the 99th percentile.
        public var latencyDeltaP99Us: Int64?
        /// The last non-matching reads, newest first.
        public var recent: [ShadowComparison]

        enum CodingKeys: String, CodingKey {
            case active, halted, percent, reads, matches, lag, mismatches, errors
            case latencyDeltaP50Us = "latency_delta_p50_us"
            case latencyDeltaP99Us = "latency_delta_p99_us"
            case recent
        }

        /// Shadow-read figures.
        public init(
            active: Bool, halted: Bool, percent: Double, reads: Int, matches: Int, lag: Int, mismatches: Int, errors: Int,
            latencyDeltaP50Us: Int64?, latencyDeltaP99Us: Int64?, recent: [ShadowComparison]
        ) {
            self.active = active
            self.halted = halted
            self.percent = percent
            self.reads = reads
            self.matches = matches
            self.lag = lag
            self.mismatches = mismatches
            self.errors = errors
            self.latencyDeltaP50Us = latencyDeltaP50Us
            self.latencyDeltaP99Us = latencyDeltaP99Us
            self.recent = recent
        }

        /// Writes every member, `null` for latency deltas not measured yet.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(active, forKey: .active)
            try container.encode(halted, forKey: .halted)
            try container.encode(percent, forKey: .percent)
            try container.encode(reads, forKey: .reads)
            try container.encode(matches, forKey: .matches)
            try container.encode(lag, forKey: .lag)
            try container.encode(mismatches, forKey: .mismatches)
            try container.encode(errors, forKey: .errors)
            try container.encodeNullable(latencyDeltaP50Us, forKey: .latencyDeltaP50Us)
            try container.encodeNullable(latencyDeltaP99Us, forKey: .latencyDeltaP99Us)
            try container.encode(recent, forKey: .recent)
        }
    }

    /// One shadow read that did not match: what each side held.
    public struct ShadowComparison: Codable, Sendable, Hashable {
        /// The table.
        public var table: String
        /// The primary key.
        public var pk: String
        /// The old owner's version; nil: no row.
        public var sourceVersion: UInt64?
        /// The new owner's version; nil: no row.
        public var targetVersion: UInt64?
        /// `match`, `lag`, or the class of a real difference (`missing_on_target` …).
        public var result: String
        /// When, milliseconds of wall time.
        public var atMs: UInt64

        enum CodingKeys: String, CodingKey {
            case table, pk
            case sourceVersion = "source_version"
            case targetVersion = "target_version"
            case result
            case atMs = "at_ms"
        }

        /// A comparison.
        public init(table: String, pk: String, sourceVersion: UInt64?, targetVersion: UInt64?, result: String, atMs: UInt64) {
            self.table = table
            self.pk = pk
            self.sourceVersion = sourceVersion
            self.targetVersion = targetVersion
            self.result = result
            self.atMs = atMs
        }

        /// Writes every member, `null` for a side that had no row.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(table, forKey: .table)
            try container.encode(pk, forKey: .pk)
            try container.encodeNullable(sourceVersion, forKey: .sourceVersion)
            try container.encodeNullable(targetVersion, forKey: .targetVersion)
            try container.encode(result, forKey: .result)
            try container.encode(atMs, forKey: .atMs)
        }
    }
}
