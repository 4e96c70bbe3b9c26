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
        min(verifySubranges, max(1, Self.maxVerifySubrangesPerPass / max(1, moves * tables)))
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

    /// The first option outside its bounds, or nil when every option is within them.
    public func violation() -> Violation? {
        func rows(_ value: Int?, _ option: String) -> Violation? {
            guard let value, !(1...Self.maxRows).contains(value) else { return nil }
            return Violation(option: option, rule: "1…\(Self.maxRows)")
        }
        func millis(_ value: UInt64?, _ option: String, max: UInt64 = Self.maxMillis, _ limit: String = "a year") -> Violation? {
            guard let value, value > max else { return nil }
            return Violation(option: option, rule: "0…\(max) (at most \(limit))")
        }
        func count(_ value: Int, _ option: String, _ bounds: ClosedRange<Int>) -> Violation? {
            bounds.contains(value) ? nil : Violation(option: option, rule: "\(bounds.lowerBound)…\(bounds.upperBound)")
        }
        let risingSteps = canarySteps.allSatisfy { $0 > 0 && $0 <= 100 } && zip(canarySteps, canarySteps.dropFirst()).allSatisfy { $0 < $1 }
        let checks: [Violation?] = [
            rows(chunkRows, "chunk_rows"),
            rows(maxLagChanges, "max_lag_changes"),
            rows(cleanupChunkRows, "cleanup_chunk_rows"),
            rows(maxRowsPerSecond, "max_rows_per_second"),
            millis(maxLagMillis, "max_lag_ms"),
            millis(bakeMillis, "bake_ms"),
            millis(tombstoneGraceMillis, "tombstone_grace_ms"),
            millis(canaryStepMillis, "canary_step_ms", max: 86_400_000, "a day"),
            millis(failedStreamRetentionMillis, "failed_stream_retention_ms", max: 7 * 86_400_000, "a week"),
            count(verifySubranges, "verify_subranges", 1...65_536),
            count(maxRepairPasses, "max_repair_passes", 1...10),
            count(maxCutoverAttempts, "max_cutover_attempts", 1...100),
            count(copyParallelism, "copy_parallelism", 1...64),
            latencyFactor.flatMap { factor in
                (1.1...100).contains(factor) ? nil : Violation(option: "latency_factor", rule: "0 (off) or 1.1…100")
            },
            canarySteps.count > 100
                ? Violation(option: "canary_steps", rule: "at most 100 steps")
                : risingSteps
                    ? nil : Violation(option: "canary_steps", rule: "rising percentages in (0, 100], like [1, 10, 50, 100] ([] for none)"),
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
