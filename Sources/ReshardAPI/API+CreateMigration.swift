extension API {
    /// `POST /v1/migrations`: plan a migration and start it, or only plan it (`dryRun`).
    ///
    /// What the fields mean together (which kinds need `shard`, `start` and `end`, which
    /// strategies exist) is the server's to judge; decoding checks only the JSON's shape, and
    /// `options` strictly (see `MigrationOptions`).
    public struct CreateMigration: Codable, Sendable, Hashable {
        /// `add_shard`, `remove_shard`, `rebalance`, `move_range`, `split_hot_range` or
        /// `change_shard_key`.
        public var kind: String
        /// The shard added, removed, or receiving the range.
        public var shard: String?
        /// `change_shard_key`: the table placed again.
        public var table: String?
        /// `change_shard_key`: the field that places its rows from then on.
        public var shardKey: String?
        /// `move_range`: the inclusive start, `0x` hex or decimal digits.
        public var start: String?
        /// `move_range`: the exclusive end, `0x` hex or decimal digits.
        public var end: String?
        /// `rebalance`: what to even out, `rows` (the default), `requests`, `bytes`, `time`, or
        /// `mix` (by `weights`); `split_hot_range`: the load signal that finds the hot range.
        public var signal: String?
        /// `rebalance` with `signal` `mix`: each part's weight.
        public var weights: LoadWeights?
        /// Only `cdc_backfill` today.
        public var strategy: String?
        /// Plan only, change nothing; nil is false.
        public var dryRun: Bool?
        /// The migration's knobs; nil keeps every default.
        public var options: MigrationOptions?

        // Declared (and so decoded) in this order: a body wrong in several places is answered
        // about the first of them.
        enum CodingKeys: String, CodingKey {
            case kind, shard, table
            case shardKey = "shard_key"
            case start, end, signal, weights, strategy
            case dryRun = "dry_run"
            case options
        }

        /// A migration request.
        public init(
            kind: String, shard: String? = nil, table: String? = nil, shardKey: String? = nil, start: String? = nil, end: String? = nil,
            signal: String? = nil, weights: LoadWeights? = nil, strategy: String? = nil, dryRun: Bool? = nil,
            options: MigrationOptions? = nil
        ) {
            self.signal = signal
            self.weights = weights
            self.kind = kind
            self.shard = shard
            self.table = table
            self.shardKey = shardKey
            self.start = start
            self.end = end
            self.strategy = strategy
            self.dryRun = dryRun
            self.options = options
        }
    }

    /// The weights of a `mix` rebalance: each part (rows, and the routers' requests, bytes and
    /// time) counts as its share of its own total, times its weight; a missing weight is 0.
    public struct LoadWeights: Codable, Sendable, Hashable {
        public var rows: Double?
        public var requests: Double?
        public var bytes: Double?
        public var time: Double?

        public init(rows: Double? = nil, requests: Double? = nil, bytes: Double? = nil, time: Double? = nil) {
            self.rows = rows
            self.requests = requests
            self.bytes = bytes
            self.time = time
        }
    }

    /// A migration's knobs, each optional (nil keeps the server's default).
    ///
    /// Decoding is strict, because an option nobody reads (a typo such as `bake_msec`) would
    /// silently keep a default such as a ten-minute bake: a member that is not an option, and
    /// an option of the wrong type or size (`-1`, `1e999`, 2^64 for a count), throw an
    /// `OptionError` that names it. Whether a well-typed value is within its bounds is the
    /// server's rule (ReshardCore's `MigrationSettings`), not checked here.
    public struct MigrationOptions: Codable, Sendable, Hashable {
        /// Rows per copy chunk.
        public var chunkRows: Int?
        /// Catch-up is done when every old owner's backlog is at most this many changes …
        public var maxLagChanges: Int?
        /// … and its oldest unapplied change is at most this old.
        public var maxLagMs: UInt64?
        /// How long reverse replication keeps the old owners current before cleanup.
        public var bakeMs: UInt64?
        /// Rows deleted per cleanup chunk.
        public var cleanupChunkRows: Int?
        /// A ceiling on copied rows per second.
        public var maxRowsPerSecond: Int?
        /// Cleanup purges tombstones older than its start minus this.
        public var tombstoneGraceMs: UInt64?
        /// Slow the copy when the router's p99 passes this multiple of its baseline; 0 turns it off.
        public var latencyFactor: Double?
        /// Sub-ranges each move is compared in.
        public var verifySubranges: Int?
        /// Compare-and-repair passes before verification fails the migration.
        public var maxRepairPasses: Int?
        /// Aggregate checks, `table.field`.
        public var checks: [String]?
        /// Rising percentages of the moving ranges' reads to shadow-read; `[]` for no canary.
        public var canarySteps: [Double]?
        /// How long each canary step lasts.
        public var canaryStepMs: UInt64?
        /// Rising percentages of the moving ranges' reads the new owners serve alone after a
        /// clean verification (`write_new_read_old`); `[]` or absent: all at once.
        public var readSteps: [Double]?
        /// How long each read step lasts.
        public var readStepMs: UInt64?
        /// Reads go back when more than this share of the served ones failed.
        public var maxReadErrorRate: Double?
        /// Reads go back when the served reads' p99 passes this multiple of the old path's.
        public var maxReadLatencyFactor: Double?
        /// Gates (`before_cutover` …) the migration waits at until an operator approves.
        public var gates: [String]?
        /// How long a migration that failed before the switch keeps its change streams.
        public var failedStreamRetentionMs: UInt64?
        /// How long writes may be held before the switch.
        public var cutoverBudgetMs: UInt64?
        /// How long a mode shown to routers takes to reach every one.
        public var routerFollowMs: UInt64?

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
            case readSteps = "read_steps"
            case readStepMs = "read_step_ms"
            case maxReadErrorRate = "max_read_error_rate"
            case maxReadLatencyFactor = "max_read_latency_factor"
            case gates
            case failedStreamRetentionMs = "failed_stream_retention_ms"
            case cutoverBudgetMs = "cutover_budget_ms"
            case routerFollowMs = "router_follow_ms"
        }

        /// Every option's wire name, in the order the schema lists them.
        public static let names = CodingKeys.allCases.map(\.rawValue)

        /// No option set: every default.
        public init() {}

        /// Reads the options, refusing a member that is not one and a value of the wrong type
        /// or size with an `OptionError` naming it (the first unknown member in name order, so
        /// the answer does not depend on the order the client wrote them in).
        public init(from decoder: any Decoder) throws {
            if let unknown = try decoder.firstUnknownMember(of: CodingKeys.self) {
                throw OptionError.unknown(unknown)
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func option<T: Decodable>(_ key: CodingKeys) throws -> T? {
                do {
                    return try container.decodeIfPresent(T.self, forKey: key)
                } catch {
                    throw OptionError.malformed(key.rawValue)
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
            readSteps = try option(.readSteps)
            readStepMs = try option(.readStepMs)
            maxReadErrorRate = try option(.maxReadErrorRate)
            maxReadLatencyFactor = try option(.maxReadLatencyFactor)
            gates = try option(.gates)
            failedStreamRetentionMs = try option(.failedStreamRetentionMs)
            cutoverBudgetMs = try option(.cutoverBudgetMs)
            routerFollowMs = try option(.routerFollowMs)
        }
    }

    /// Why `MigrationOptions` could not be decoded; it names the member, so an answer can too.
    public struct OptionError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What was wrong with the member; more reasons may come.
        public struct Reason: Sendable, Hashable {
            private enum Base: Sendable, Hashable {
                case unknown, malformed
            }
            private let base: Base

            /// The member is not an option.
            public static let unknown = Reason(base: .unknown)
            /// The option's value is of the wrong type or does not fit it.
            public static let malformed = Reason(base: .malformed)
        }

        /// What was wrong.
        public let reason: Reason
        /// The member's name, as the client wrote it.
        public let option: String

        /// `option` is not an option.
        public static func unknown(_ option: String) -> OptionError {
            OptionError(reason: .unknown, option: option)
        }

        /// The value of `option` is of the wrong type or does not fit it.
        public static func malformed(_ option: String) -> OptionError {
            OptionError(reason: .malformed, option: option)
        }

        /// A sentence naming the member.
        public var description: String {
            reason == .unknown ? "unknown option \(option)" : "option \(option) has the wrong type or is out of range"
        }
    }
}
