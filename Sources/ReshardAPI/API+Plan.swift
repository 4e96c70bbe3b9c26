extension API {
    /// One move of a plan: a range, its old and new owner, and the rows it holds.
    public struct PlanMove: Codable, Sendable, Hashable {
        /// The inclusive start, `0x` and 16 lowercase hex digits.
        public var start: String
        /// The exclusive end; `0x10000000000000000` is the end of the space.
        public var end: String
        /// The old owner.
        public var source: String
        /// The new owner.
        public var target: String
        /// Rows (tombstones included) in the range over every table.
        public var rows: Int

        enum CodingKeys: String, CodingKey {
            case start, end, source, target, rows
        }

        /// A move.
        public init(start: String, end: String, source: String, target: String, rows: Int) {
            self.start = start
            self.end = end
            self.source = source
            self.target = target
            self.rows = rows
        }
    }

    /// A shard-key change's prediction: the table's live rows, their bytes, and how they will
    /// spread over the shards under the new key.
    public struct LayoutPlan: Codable, Sendable, Hashable {
        /// The table placed again.
        public var table: String
        /// The field that will place its rows.
        public var shardKey: String
        /// Live rows, counted in full.
        public var rows: Int
        /// Bytes of their primary keys and bodies.
        public var bytes: Int
        /// Live rows each shard will hold under the new key.
        public var rowsPerShard: [String: Int]
        /// Largest over mean of `rows_per_shard` (1 is perfectly even).
        public var imbalance: Double
        /// Rows with no usable value of the new key: the migration does not start while there are any.
        public var unplaceable: Int
        /// Up to ten of their primary keys.
        public var unplaceableExamples: [String]

        enum CodingKeys: String, CodingKey {
            case table
            case shardKey = "shard_key"
            case rows, bytes
            case rowsPerShard = "rows_per_shard"
            case imbalance, unplaceable
            case unplaceableExamples = "unplaceable_examples"
        }

        /// A prediction.
        public init(
            table: String, shardKey: String, rows: Int, bytes: Int, rowsPerShard: [String: Int], imbalance: Double, unplaceable: Int,
            unplaceableExamples: [String]
        ) {
            self.table = table
            self.shardKey = shardKey
            self.rows = rows
            self.bytes = bytes
            self.rowsPerShard = rowsPerShard
            self.imbalance = imbalance
            self.unplaceable = unplaceable
            self.unplaceableExamples = unplaceableExamples
        }
    }

    /// What a load-aware plan weighs and the balance it predicts.
    public struct BalancePlan: Codable, Sendable, Hashable {
        /// The weight of each part: rows, requests, bytes, time.
        public var weights: LoadWeights
        /// Complete one-second windows weighed, and the routers whose load they hold.
        public var windows: Int
        public var routers: [String]
        /// The busiest shard's load over the mean under the map in force, and under the plan's.
        public var maxOverMean: Double
        public var predictedMaxOverMean: Double

        enum CodingKeys: String, CodingKey {
            case weights, windows, routers
            case maxOverMean = "max_over_mean"
            case predictedMaxOverMean = "predicted_max_over_mean"
        }

        public init(weights: LoadWeights, windows: Int, routers: [String], maxOverMean: Double, predictedMaxOverMean: Double) {
            self.weights = weights
            self.windows = windows
            self.routers = routers
            self.maxOverMean = maxOverMean
            self.predictedMaxOverMean = predictedMaxOverMean
        }
    }

    /// A migration's plan: the maps it goes between, its moves, and what it is predicted to copy.
    public struct Plan: Codable, Sendable, Hashable {
        /// `add_shard`, `remove_shard`, `rebalance`, `move_range` or `change_shard_key`.
        public var kind: String
        /// The generation of the map in force when the plan was made.
        public var fromGeneration: UInt64
        /// The generation the cutover publishes.
        public var toGeneration: UInt64
        /// The moves, in plan order (verification reports index them).
        public var moves: [PlanMove]
        /// Rows predicted to be copied.
        public var rows: Int
        /// Bytes of keys and bodies predicted to be copied.
        public var bytes: Int
        /// The share of the hash space that moves, 0…1.
        public var movedFraction: Double
        /// The least share any plan of this kind could move, 0…1.
        public var idealFraction: Double
        /// How the data moves (`cdc_backfill`, `dual_write` …).
        public var strategy: String
        /// What each phase of the strategy will do, in order.
        public var steps: [PlanStep]
        /// `change_shard_key`: the table's rows under the new key.
        public var layout: LayoutPlan?
        /// A load-aware kind: the balance it predicts by the routers' measured load.
        public var balance: BalancePlan?

        enum CodingKeys: String, CodingKey {
            case kind, strategy, steps, layout, balance
            case fromGeneration = "from_generation"
            case toGeneration = "to_generation"
            case moves, rows, bytes
            case movedFraction = "moved_fraction"
            case idealFraction = "ideal_fraction"
        }

        /// A plan with its predictions.
        public init(
            kind: String, fromGeneration: UInt64, toGeneration: UInt64, moves: [PlanMove], rows: Int, bytes: Int, movedFraction: Double,
            idealFraction: Double, strategy: String, steps: [PlanStep], layout: LayoutPlan? = nil, balance: BalancePlan? = nil
        ) {
            self.layout = layout
            self.balance = balance
            self.strategy = strategy
            self.steps = steps
            self.kind = kind
            self.fromGeneration = fromGeneration
            self.toGeneration = toGeneration
            self.moves = moves
            self.rows = rows
            self.bytes = bytes
            self.movedFraction = movedFraction
            self.idealFraction = idealFraction
        }
    }

    /// The answer to `POST /v1/migrations`: with an `id` when the migration was journaled and
    /// started (`202`, the schema `MigrationCreated`), without one for a dry run (`200`, the
    /// schema `MigrationDryRun`, which has no `id` member at all).
    public struct MigrationCreated: Codable, Sendable, Hashable {
        /// The new migration's id; nil for a dry run.
        public var id: String?
        /// Whether it was only planned.
        public var dryRun: Bool
        /// The plan.
        public var plan: Plan

        enum CodingKeys: String, CodingKey {
            case id
            case dryRun = "dry_run"
            case plan
        }

        /// A started migration (`id`) or a dry run (nil).
        public init(id: String?, plan: Plan) {
            self.id = id
            dryRun = id == nil
            self.plan = plan
        }
    }

    /// `POST /v1/migrations/{id}/approve`; an empty body is the same as `Approve()`.
    public struct Approve: Codable, Sendable, Hashable {
        /// The gate to approve (`before_cutover` …); nil: the one the migration waits at.
        public var gate: String?

        enum CodingKeys: String, CodingKey {
            case gate
        }

        /// An approval of `gate`, or of the gate the migration waits at.
        public init(gate: String? = nil) {
            self.gate = gate
        }
    }

    /// The answer to an accepted command (approve, pause, resume, rollback).
    public struct CommandResult: Codable, Sendable, Hashable {
        /// The migration.
        public var id: String
        /// Its phase right after the command; `unknown` if it vanished meanwhile.
        public var phase: String

        enum CodingKeys: String, CodingKey {
            case id, phase
        }

        /// A command's outcome.
        public init(id: String, phase: String) {
            self.id = id
            self.phase = phase
        }
    }
}
