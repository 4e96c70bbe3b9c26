/// The bounds of every migration option, in one place: the API refuses a request outside them
/// with 400 `invalid_option` naming the option, and the state machine refuses to run a journal
/// outside them (a journal written by hand or by a release without these bounds), so no value
/// can reach the arithmetic of a running migration unchecked.
extension MigrationSettings {
    /// One year, the longest any duration option may be.
    public static let maxMillis: UInt64 = 365 * 86_400_000
    /// The most rows in a chunk, changes of lag, or rows per second.
    public static let maxRows = 1_000_000

    /// The most sub-ranges one verification pass compares, over every move and table: each
    /// costs a summary on both sides and memory while compared (13.4 million of them, 65,536
    /// for each of 205 moves, held 790 MB).
    public static let maxVerifySubrangesPerPass = 1 << 18

    /// Sub-ranges per move for a plan of `moves` moves over `tables` tables: `verifySubranges`,
    /// fewer where the pass would compare more than `maxVerifySubrangesPerPass`.
    public func verifyParts(moves: Int, tables: Int) -> Int {
        Self.verifyParts(subranges: verifySubranges, moves: moves, tables: tables)
    }

    /// `subranges` per move, fewer where the pass would compare more than `maxVerifySubrangesPerPass`.
    public static func verifyParts(subranges: Int, moves: Int, tables: Int) -> Int {
        min(max(1, subranges), max(1, maxVerifySubrangesPerPass / max(1, moves * tables)))
    }

    /// An option outside its bounds: its wire name and the rule it breaks.
    public struct Violation: Error, Sendable, Hashable, CustomStringConvertible {
        /// The option's name as the API spells it (`bake_ms`).
        public let option: String
        /// What the option must be.
        public let rule: String

        /// `option must be rule`.
        public var description: String { "\(option) must be \(rule)" }
    }

    /// The bounds of a whole-number option, and how the API states them.
    public struct Bounds: Sendable, Hashable {
        /// The smallest and largest value accepted.
        public let range: ClosedRange<UInt64>
        /// The rule as a sentence's end: `1…1000000`, `0…86400000 (at most a day)`.
        public let rule: String

        init(_ range: ClosedRange<UInt64>, within limit: String? = nil) {
            self.range = range
            self.rule = "\(range.lowerBound)…\(range.upperBound)" + (limit.map { " (at most \($0))" } ?? "")
        }
    }

    /// Every option's rule by its wire name: the one source of the bounds `violation()` checks
    /// and of the words the API answers with, also when a value is not even a whole number.
    public static let rules: [String: String] = {
        var rules = wholeNumberBounds.mapValues(\.rule)
        rules["latency_factor"] = "0 (off) or 1.1…100"
        rules["canary_steps"] = "at most 100 rising percentages in (0, 100], like [1, 10, 50, 100] ([] for none)"
        rules["read_steps"] =
            "at most 100 rising percentages in (0, 100], like [1, 10, 50, 100] ([] for none), and only with write_new_read_old (the strategy whose reads can move gradually)"
        rules["max_read_error_rate"] = "0…1 (a share of the served reads)"
        rules["max_read_latency_factor"] = "1.1…100"
        return rules
    }()

    /// The bounds of each whole-number option, by its wire name.
    public static let wholeNumberBounds: [String: Bounds] = {
        let rows = Bounds(1...UInt64(maxRows))
        let millis = Bounds(0...maxMillis, within: "a year")
        return [
            "chunk_rows": rows, "max_lag_changes": rows, "cleanup_chunk_rows": rows, "max_rows_per_second": rows,
            "max_lag_ms": millis, "bake_ms": millis, "tombstone_grace_ms": millis,
            "canary_step_ms": Bounds(0...86_400_000, within: "a day"),
            "read_step_ms": Bounds(0...86_400_000, within: "a day"),
            "failed_stream_retention_ms": Bounds(0...7 * 86_400_000, within: "a week"),
            "verify_subranges": Bounds(1...65_536), "max_repair_passes": Bounds(1...10),
            "max_cutover_attempts": Bounds(1...100), "copy_parallelism": Bounds(1...64),
            "cutover_budget_ms": Bounds(1...60_000, within: "a minute"),
            "router_follow_ms": Bounds(1...600_000, within: "ten minutes"),
        ]
    }()

    /// The first option outside its bounds, or nil when every option is within them.
    public func violation() -> Violation? {
        func rule(_ option: String) -> String { Self.rules[option] ?? "within its bounds" }
        func whole(_ value: (some BinaryInteger)?, _ option: String) -> Violation? {
            guard let value, let bounds = Self.wholeNumberBounds[option] else { return nil }
            let fits = value >= 0 && bounds.range.contains(UInt64(value))
            return fits ? nil : Violation(option: option, rule: bounds.rule)
        }
        func rising(_ steps: [Double]) -> Bool {
            steps.count <= 100 && steps.allSatisfy { $0 > 0 && $0 <= 100 } && zip(steps, steps.dropFirst()).allSatisfy { $0 < $1 }
        }
        let readSteps = readStepsInForce
        let readStepsFit = rising(readSteps) && (readSteps.isEmpty || strategyInForce.servesReadsGradually)
        let checks: [Violation?] = [
            whole(chunkRows, "chunk_rows"),
            whole(maxLagChanges, "max_lag_changes"),
            whole(cleanupChunkRows, "cleanup_chunk_rows"),
            whole(maxRowsPerSecond, "max_rows_per_second"),
            whole(maxLagMillis, "max_lag_ms"),
            whole(bakeMillis, "bake_ms"),
            whole(tombstoneGraceMillis, "tombstone_grace_ms"),
            whole(canaryStepMillis, "canary_step_ms"),
            whole(readStepMillis, "read_step_ms"),
            whole(failedStreamRetentionMillis, "failed_stream_retention_ms"),
            whole(cutoverBudgetMillis, "cutover_budget_ms"),
            whole(routerFollowMillis, "router_follow_ms"),
            whole(verifySubranges, "verify_subranges"),
            whole(maxRepairPasses, "max_repair_passes"),
            whole(maxCutoverAttempts, "max_cutover_attempts"),
            whole(copyParallelism, "copy_parallelism"),
            latencyFactor.flatMap { (1.1...100).contains($0) ? nil : Violation(option: "latency_factor", rule: rule("latency_factor")) },
            rising(canarySteps) ? nil : Violation(option: "canary_steps", rule: rule("canary_steps")),
            readStepsFit ? nil : Violation(option: "read_steps", rule: rule("read_steps")),
            maxReadErrorRate.flatMap {
                (0...1).contains($0) ? nil : Violation(option: "max_read_error_rate", rule: rule("max_read_error_rate"))
            },
            maxReadLatencyFactor.flatMap {
                (1.1...100).contains($0) ? nil : Violation(option: "max_read_latency_factor", rule: rule("max_read_latency_factor"))
            },
        ]
        return checks.lazy.compactMap { $0 }.first
    }
}

extension UInt64 {
    /// `self + other`, or `UInt64.max` where the sum would not fit: a deadline that far away
    /// means "never", which is what an absurd duration asks for, and never a trap.
    public func adding(saturating other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
