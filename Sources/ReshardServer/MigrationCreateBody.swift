import Hummingbird
import ReshardCore

/// The body of `POST /v1/migrations`. Each option is decoded on its own so that a value of the
/// wrong type or size (`-1`, `1e999`, 2^64 for a count) is answered with the option's name,
/// and an option name nobody knows (a typo that would silently keep a default, such as a
/// ten-minute bake) is refused; the bounds themselves are the core's (`MigrationSettings`).
struct MigrationCreateBody: Decodable {
    let kind: String
    let shard: String?
    let start: String?
    let end: String?
    let strategy: String?
    let dryRun: Bool?
    let options: Options?

    enum CodingKeys: String, CodingKey {
        case kind, shard, start, end, strategy, options
        case dryRun = "dry_run"
    }

    struct Options: Decodable {
        let chunkRows: Int?
        let maxLagChanges: Int?
        let maxLagMs: UInt64?
        let bakeMs: UInt64?
        let cleanupChunkRows: Int?
        let maxRowsPerSecond: Int?
        let tombstoneGraceMs: UInt64?
        let latencyFactor: Double?
        let verifySubranges: Int?
        let maxRepairPasses: Int?
        let checks: [String]?
        let canarySteps: [Double]?
        let canaryStepMs: UInt64?
        let gates: [String]?
        let failedStreamRetentionMs: UInt64?
        let cutoverBudgetMs: UInt64?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case chunkRows = "chunk_rows"
            case maxLagChanges = "max_lag_changes"
            case maxLagMs = "max_lag_ms"
            case bakeMs = "bake_ms"
            case cleanupChunkRows = "cleanup_chunk_rows"
            case maxRowsPerSecond = "max_rows_per_second"
            case tombstoneGraceMs = "tombstone_grace_ms"
            case latencyFactor = "latency_factor"
            case verifySubranges = "verify_subranges"
            case maxRepairPasses = "max_repair_passes"
            case checks
            case canarySteps = "canary_steps"
            case canaryStepMs = "canary_step_ms"
            case gates
            case failedStreamRetentionMs = "failed_stream_retention_ms"
            case cutoverBudgetMs = "cutover_budget_ms"
        }

        /// Any member name, to find the ones that are not options.
        private struct AnyKey: CodingKey {
            let stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let known = Set(CodingKeys.allCases.map(\.rawValue))
            if let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).sorted().first(where: {
                !known.contains($0)
            }) {
                throw APIError(
                    .badRequest, code: "invalid_option",
                    message:
                        "unknown option \(unknown.prefix(64)); options are \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // A value of the wrong type or size is answered with the option's rule from the core.
            func option<T: Decodable>(_ key: CodingKeys) throws -> T? {
                do {
                    return try container.decodeIfPresent(T.self, forKey: key)
                } catch {
                    let rule = MigrationSettings.rules[key.rawValue] ?? "a list of strings"
                    throw APIError(.badRequest, code: "invalid_option", message: "\(key.rawValue) must be \(rule)")
                }
            }
            chunkRows = try option(.chunkRows)
            maxLagChanges = try option(.maxLagChanges)
            maxLagMs = try option(.maxLagMs)
            bakeMs = try option(.bakeMs)
            cleanupChunkRows = try option(.cleanupChunkRows)
            maxRowsPerSecond = try option(.maxRowsPerSecond)
            tombstoneGraceMs = try option(.tombstoneGraceMs)
            latencyFactor = try option(.latencyFactor)
            verifySubranges = try option(.verifySubranges)
            maxRepairPasses = try option(.maxRepairPasses)
            checks = try option(.checks)
            canarySteps = try option(.canarySteps)
            canaryStepMs = try option(.canaryStepMs)
            gates = try option(.gates)
            failedStreamRetentionMs = try option(.failedStreamRetentionMs)
            cutoverBudgetMs = try option(.cutoverBudgetMs)
        }
    }
}
