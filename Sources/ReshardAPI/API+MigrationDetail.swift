extension API {
    /// `GET /v1/migrations/{id}`: a migration's full status (the schema `MigrationDetail`).
    ///
    /// A migration whose journal cannot be read is answered with a `MigrationSummary` instead;
    /// a client tries this type first and falls back to that one.
    public struct MigrationDetail: Codable, Sendable, Hashable {
        /// The migration's id.
        public var id: String
        /// `add_shard`, `remove_shard`, `rebalance` or `move_range`.
        public var kind: String
        /// The phase.
        public var phase: String
        /// How many moves its plan has.
        public var moves: Int
        /// Rows copied so far.
        public var rowsCopied: Int
        /// Rows the plan expected to copy, once known.
        public var rowsEstimated: Int?
        /// The last error, if a step is being retried or the migration failed.
        public var error: String?
        /// When it was created, milliseconds of wall time.
        public var startedMs: UInt64?
        /// When it ended `done` or `rolled_back`, milliseconds of wall time; nil until then.
        public var endedMs: UInt64?
        /// The phase a pause or failure interrupted.
        public var interrupted: String?
        /// The generation of the map the migration started from.
        public var fromGeneration: UInt64
        /// The generation its cutover publishes.
        public var toGeneration: UInt64
        /// Copy tasks finished.
        public var copyTasksDone: Int
        /// Copy tasks in all.
        public var copyTasks: Int
        /// Old owner → new owner replication, by old owner.
        public var forward: [String: StreamProgress]
        /// New owner → old owner replication during bake, by new owner.
        public var reverse: [String: StreamProgress]
        /// How each shard of the plan captures changes, by shard.
        public var changeCapture: [String: String]
        /// The step the cutover under way is at (`hold` … `release`).
        public var cutoverStep: String?
        /// Cutovers tried.
        public var cutoverAttempts: Int
        /// When each phase began, oldest first.
        public var phases: [PhaseMark]
        /// How long each step of the latest cutover took (while this process runs the migration).
        public var cutoverSteps: [CutoverStepTiming]
        /// The copy throttle.
        public var throttle: Throttle
        /// Per cutover, how long the writes it held waited.
        public var writePauses: [WritePause]
        /// Rows cleanup deleted from the old owners.
        public var rowsDeleted: Int
        /// Old tombstones cleanup purged.
        public var tombstonesPurged: Int
        /// The step a rollback under way is at.
        public var rollbackStep: String?
        /// What kept the last verification from passing (the first 20).
        public var mismatches: [String]
        /// The gate the migration waits at, if it does.
        public var awaitingApproval: AwaitingApproval?
        /// The gates it waits at until approved, by name.
        public var gates: [String]
        /// The gates approved so far, by name.
        public var approved: [String]
        /// How long the bake lasts, milliseconds.
        public var bakeMs: UInt64
        /// When the bake ends, milliseconds of wall time, once it began.
        public var bakeUntilMs: UInt64?
        /// The canary's steps and where it is.
        public var canary: CanaryState
        /// What this router's shadow reads found, once it has seen the canary.
        public var shadowReads: ShadowReads?
        /// The last verification, in brief (the full report is `VerificationReport`).
        public var verification: VerificationSummary?
        /// How the data moves (`cdc_backfill`, `dual_write` …).
        public var strategy: String
        /// What routers do to the moving ranges now; nil when they route by the map alone.
        public var routes: Routes?
        /// `dual_write`'s second writes as this server's router counted them; nil for other
        /// strategies or before it saw any.
        public var secondWrites: SecondWrites?
        /// `traffic_replay`'s recorded and replayed writes; nil for other strategies.
        public var replay: Replay?
        /// `write_new_read_old`'s read steps and served reads; nil for other strategies.
        public var reads: ReadServing?
        /// The copies on access and old-owner reads of a strategy that switches first; nil for
        /// other strategies.
        public var redirects: Redirects?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, kind, phase, moves
            case rowsCopied = "rows_copied"
            case rowsEstimated = "rows_estimated"
            case error
            case startedMs = "started_ms"
            case endedMs = "ended_ms"
            case interrupted
            case fromGeneration = "from_generation"
            case toGeneration = "to_generation"
            case copyTasksDone = "copy_tasks_done"
            case copyTasks = "copy_tasks"
            case forward, reverse
            case changeCapture = "change_capture"
            case cutoverStep = "cutover_step"
            case cutoverAttempts = "cutover_attempts"
            case phases
            case cutoverSteps = "cutover_steps"
            case throttle
            case writePauses = "write_pauses"
            case rowsDeleted = "rows_deleted"
            case tombstonesPurged = "tombstones_purged"
            case rollbackStep = "rollback_step"
            case mismatches
            case awaitingApproval = "awaiting_approval"
            case gates, approved
            case bakeMs = "bake_ms"
            case bakeUntilMs = "bake_until_ms"
            case canary
            case shadowReads = "shadow_reads"
            case verification, strategy, routes
            case secondWrites = "second_writes"
            case replay, reads, redirects
        }

        /// The members of the brief form, which every status begins with.
        public var summary: MigrationSummary {
            MigrationSummary(
                id: id, kind: kind, phase: phase, moves: moves, rowsCopied: rowsCopied, rowsEstimated: rowsEstimated, error: error,
                startedMs: startedMs, endedMs: endedMs)
        }

        /// A status from its brief form and the rest; `summary` gives the first nine members.
        public init(
            summary: MigrationSummary, interrupted: String?, fromGeneration: UInt64, toGeneration: UInt64, copyTasksDone: Int,
            copyTasks: Int, forward: [String: StreamProgress], reverse: [String: StreamProgress], changeCapture: [String: String],
            cutoverStep: String?, cutoverAttempts: Int, phases: [PhaseMark], cutoverSteps: [CutoverStepTiming], throttle: Throttle,
            writePauses: [WritePause], rowsDeleted: Int, tombstonesPurged: Int, rollbackStep: String?, mismatches: [String],
            awaitingApproval: AwaitingApproval?, gates: [String], approved: [String], bakeMs: UInt64, bakeUntilMs: UInt64?,
            canary: CanaryState, shadowReads: ShadowReads?, verification: VerificationSummary?, strategy: String, routes: Routes?,
            secondWrites: SecondWrites?, replay: Replay?, reads: ReadServing?, redirects: Redirects?
        ) {
            self.replay = replay
            self.reads = reads
            self.redirects = redirects
            self.strategy = strategy
            self.routes = routes
            self.secondWrites = secondWrites
            id = summary.id
            kind = summary.kind
            phase = summary.phase
            moves = summary.moves
            rowsCopied = summary.rowsCopied
            rowsEstimated = summary.rowsEstimated
            error = summary.error
            startedMs = summary.startedMs
            endedMs = summary.endedMs
            self.interrupted = interrupted
            self.fromGeneration = fromGeneration
            self.toGeneration = toGeneration
            self.copyTasksDone = copyTasksDone
            self.copyTasks = copyTasks
            self.forward = forward
            self.reverse = reverse
            self.changeCapture = changeCapture
            self.cutoverStep = cutoverStep
            self.cutoverAttempts = cutoverAttempts
            self.phases = phases
            self.cutoverSteps = cutoverSteps
            self.throttle = throttle
            self.writePauses = writePauses
            self.rowsDeleted = rowsDeleted
            self.tombstonesPurged = tombstonesPurged
            self.rollbackStep = rollbackStep
            self.mismatches = mismatches
            self.awaitingApproval = awaitingApproval
            self.gates = gates
            self.approved = approved
            self.bakeMs = bakeMs
            self.bakeUntilMs = bakeUntilMs
            self.canary = canary
            self.shadowReads = shadowReads
            self.verification = verification
        }

        /// Writes every member, `null` for those that hold nothing (the schema requires them all).
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
            try container.encodeNullable(interrupted, forKey: .interrupted)
            try container.encode(fromGeneration, forKey: .fromGeneration)
            try container.encode(toGeneration, forKey: .toGeneration)
            try container.encode(copyTasksDone, forKey: .copyTasksDone)
            try container.encode(copyTasks, forKey: .copyTasks)
            try container.encode(forward, forKey: .forward)
            try container.encode(reverse, forKey: .reverse)
            try container.encode(changeCapture, forKey: .changeCapture)
            try container.encodeNullable(cutoverStep, forKey: .cutoverStep)
            try container.encode(cutoverAttempts, forKey: .cutoverAttempts)
            try container.encode(phases, forKey: .phases)
            try container.encode(cutoverSteps, forKey: .cutoverSteps)
            try container.encode(throttle, forKey: .throttle)
            try container.encode(writePauses, forKey: .writePauses)
            try container.encode(rowsDeleted, forKey: .rowsDeleted)
            try container.encode(tombstonesPurged, forKey: .tombstonesPurged)
            try container.encodeNullable(rollbackStep, forKey: .rollbackStep)
            try container.encode(mismatches, forKey: .mismatches)
            try container.encodeNullable(awaitingApproval, forKey: .awaitingApproval)
            try container.encode(gates, forKey: .gates)
            try container.encode(approved, forKey: .approved)
            try container.encode(bakeMs, forKey: .bakeMs)
            try container.encodeNullable(bakeUntilMs, forKey: .bakeUntilMs)
            try container.encode(canary, forKey: .canary)
            try container.encodeNullable(shadowReads, forKey: .shadowReads)
            try container.encodeNullable(verification, forKey: .verification)
            try container.encode(strategy, forKey: .strategy)
            try container.encodeNullable(routes, forKey: .routes)
            try container.encodeNullable(secondWrites, forKey: .secondWrites)
            try container.encodeNullable(replay, forKey: .replay)
            try container.encodeNullable(reads, forKey: .reads)
            try container.encodeNullable(redirects, forKey: .redirects)
        }
    }
}

extension API {
    /// `GET /v1/migrations/{id}`: the full status, or the brief form of a migration whose journal
    /// the server cannot read (the schema's `oneOf` of `MigrationDetail` and `UnreadableMigration`).
    public enum MigrationStatus: Codable, Sendable, Hashable {
        /// A migration the server can read.
        case detail(MigrationDetail)
        /// A migration whose journal cannot be read: failed, with why.
        case unreadable(MigrationSummary)

        /// The full status if the JSON has one, else the brief form; throws if it is neither.
        public init(from decoder: any Decoder) throws {
            if let detail = try? MigrationDetail(from: decoder) {
                self = .detail(detail)
            } else {
                self = .unreadable(try MigrationSummary(from: decoder))
            }
        }

        /// Writes the form it holds, with nothing around it.
        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .detail(let detail): try detail.encode(to: encoder)
            case .unreadable(let summary): try summary.encode(to: encoder)
            }
        }

        /// The members both forms have.
        public var summary: MigrationSummary {
            switch self {
            case .detail(let detail): detail.summary
            case .unreadable(let summary): summary
            }
        }
    }
}
