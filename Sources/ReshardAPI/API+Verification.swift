extension API {
    /// Differences between old and new owners, by class.
    public struct DiffCounts: Codable, Sendable, Hashable {
        /// The old owner has the row (or its tombstone); the new owner has nothing.
        public var missingOnTarget: Int
        /// The new owner has a row the old owner has never seen.
        public var extraOnTarget: Int
        /// The new owner holds an older version.
        public var olderOnTarget: Int
        /// The new owner holds a version the old owner never wrote.
        public var newerOnTarget: Int
        /// Same version, different content.
        public var corrupt: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case missingOnTarget = "missing_on_target"
            case extraOnTarget = "extra_on_target"
            case olderOnTarget = "older_on_target"
            case newerOnTarget = "newer_on_target"
            case corrupt
        }

        /// Counts by class.
        public init(missingOnTarget: Int, extraOnTarget: Int, olderOnTarget: Int, newerOnTarget: Int, corrupt: Int) {
            self.missingOnTarget = missingOnTarget
            self.extraOnTarget = extraOnTarget
            self.olderOnTarget = olderOnTarget
            self.newerOnTarget = newerOnTarget
            self.corrupt = corrupt
        }

        /// Every class by its wire name with its count, in the schema's order.
        public var byClass: [(name: String, count: Int)] {
            [
                (CodingKeys.missingOnTarget.rawValue, missingOnTarget), (CodingKeys.extraOnTarget.rawValue, extraOnTarget),
                (CodingKeys.olderOnTarget.rawValue, olderOnTarget), (CodingKeys.newerOnTarget.rawValue, newerOnTarget),
                (CodingKeys.corrupt.rawValue, corrupt),
            ]
        }

        /// All differences, whatever their class.
        public var total: Int { byClass.reduce(0) { $0 + $1.count } }
    }

    /// One side of an aggregate check: live rows and the exact sum of a numeric field.
    public struct AggregateSide: Codable, Sendable, Hashable {
        /// Live rows.
        public var rows: Int
        /// Rows whose field holds a number.
        public var numeric: Int
        /// The exact decimal sum.
        public var sum: String

        enum CodingKeys: String, CodingKey {
            case rows, numeric, sum
        }

        /// One side's figures.
        public init(rows: Int, numeric: Int, sum: String) {
            self.rows = rows
            self.numeric = numeric
            self.sum = sum
        }
    }

    /// An application-level check, old owners against new.
    public struct AggregateResult: Codable, Sendable, Hashable {
        /// The check, `table.field`.
        public var check: String
        /// The old owners' side.
        public var old: AggregateSide
        /// The new owners' side.
        public var new: AggregateSide
        /// Whether both sides are equal.
        public var matches: Bool

        enum CodingKeys: String, CodingKey {
            case check, old, new, matches
        }

        /// A check's result.
        public init(check: String, old: AggregateSide, new: AggregateSide, matches: Bool) {
            self.check = check
            self.old = old
            self.new = new
            self.matches = matches
        }
    }

    /// The last verification in brief, in status and at the head of the full report.
    public struct VerificationSummary: Codable, Sendable, Hashable {
        /// Verifications run so far.
        public var verifications: Int
        /// Whether the migration may switch: every move clean and every aggregate check equal.
        public var passed: Bool
        /// When it started, milliseconds of wall time.
        public var atMs: UInt64
        /// How long it took, milliseconds with three decimals.
        public var ms: Double
        /// Moves compared.
        public var moves: Int
        /// Rows compared.
        public var rowsCompared: Int
        /// Sub-ranges compared.
        public var subranges: Int
        /// Sub-ranges whose counts or checksums differed.
        public var mismatchedSubranges: Int
        /// Differences found, by class.
        public var differences: DiffCounts
        /// Rows repaired from the old owners.
        public var repaired: Int
        /// Sub-ranges still different after the last repair pass.
        public var unresolved: Int
        /// The application-level checks.
        public var aggregates: [AggregateResult]

        enum CodingKeys: String, CodingKey {
            case verifications, passed
            case atMs = "at_ms"
            case ms, moves
            case rowsCompared = "rows_compared"
            case subranges
            case mismatchedSubranges = "mismatched_subranges"
            case differences, repaired, unresolved, aggregates
        }

        /// A verification's summary.
        public init(
            verifications: Int, passed: Bool, atMs: UInt64, ms: Double, moves: Int, rowsCompared: Int, subranges: Int,
            mismatchedSubranges: Int, differences: DiffCounts, repaired: Int, unresolved: Int, aggregates: [AggregateResult]
        ) {
            self.verifications = verifications
            self.passed = passed
            self.atMs = atMs
            self.ms = ms
            self.moves = moves
            self.rowsCompared = rowsCompared
            self.subranges = subranges
            self.mismatchedSubranges = mismatchedSubranges
            self.differences = differences
            self.repaired = repaired
            self.unresolved = unresolved
            self.aggregates = aggregates
        }
    }

    /// One move's verification.
    public struct MoveVerification: Codable, Sendable, Hashable {
        /// Index into the plan's moves.
        public var move: Int
        /// The move's range start; nil if the plan has no such move.
        public var start: String?
        /// The move's range end; nil if the plan has no such move.
        public var end: String?
        /// The old owner; nil if the plan has no such move.
        public var source: String?
        /// The new owner; nil if the plan has no such move.
        public var target: String?
        /// Rows compared.
        public var rowsCompared: Int
        /// Sub-ranges compared.
        public var subranges: Int
        /// Sub-ranges whose counts or checksums differed.
        public var mismatchedSubranges: Int
        /// Differences found, by class.
        public var differences: DiffCounts
        /// Rows repaired from the old owner.
        public var repaired: Int
        /// Compare-and-repair passes run.
        public var passes: Int
        /// Whether the move ended with no difference.
        public var clean: Bool
        /// How long it took, milliseconds with three decimals.
        public var ms: Double

        enum CodingKeys: String, CodingKey {
            case move, start, end, source, target
            case rowsCompared = "rows_compared"
            case subranges
            case mismatchedSubranges = "mismatched_subranges"
            case differences, repaired, passes, clean, ms
        }

        /// A move's verification.
        public init(
            move: Int, start: String?, end: String?, source: String?, target: String?, rowsCompared: Int, subranges: Int,
            mismatchedSubranges: Int, differences: DiffCounts, repaired: Int, passes: Int, clean: Bool, ms: Double
        ) {
            self.move = move
            self.start = start
            self.end = end
            self.source = source
            self.target = target
            self.rowsCompared = rowsCompared
            self.subranges = subranges
            self.mismatchedSubranges = mismatchedSubranges
            self.differences = differences
            self.repaired = repaired
            self.passes = passes
            self.clean = clean
            self.ms = ms
        }

        /// Writes every member, `null` for the range and owners of a move the plan lacks.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(move, forKey: .move)
            try container.encodeNullable(start, forKey: .start)
            try container.encodeNullable(end, forKey: .end)
            try container.encodeNullable(source, forKey: .source)
            try container.encodeNullable(target, forKey: .target)
            try container.encode(rowsCompared, forKey: .rowsCompared)
            try container.encode(subranges, forKey: .subranges)
            try container.encode(mismatchedSubranges, forKey: .mismatchedSubranges)
            try container.encode(differences, forKey: .differences)
            try container.encode(repaired, forKey: .repaired)
            try container.encode(passes, forKey: .passes)
            try container.encode(clean, forKey: .clean)
            try container.encode(ms, forKey: .ms)
        }
    }

    /// `GET /v1/migrations/{id}/verification`: the last verification's full report.
    ///
    /// Before the first verification only `id`, `phase`, `verifications` (0) and `moves` (empty)
    /// are sent; `summary`, `positions` and `unresolved` are then nil and left out.
    public struct VerificationReport: Codable, Sendable, Hashable {
        /// The migration's id.
        public var id: String
        /// Its phase.
        public var phase: String
        /// Verifications run so far.
        public var verifications: Int
        /// The last verification in brief.
        public var summary: VerificationSummary?
        /// The old owners' changelog positions compared at, by shard.
        public var positions: [String: UInt64]?
        /// What is still different after the last repair pass (at most 100).
        public var unresolved: [String]?
        /// Per move, in plan order.
        public var moves: [MoveVerification]

        enum CodingKeys: String, CodingKey {
            case id, phase, verifications, summary, positions, unresolved, moves
        }

        /// The report of a migration verified at least once.
        public init(
            id: String, phase: String, summary: VerificationSummary, positions: [String: UInt64], unresolved: [String],
            moves: [MoveVerification]
        ) {
            self.id = id
            self.phase = phase
            verifications = summary.verifications
            self.summary = summary
            self.positions = positions
            self.unresolved = unresolved
            self.moves = moves
        }

        /// The report of a migration not verified yet.
        public static func notVerifiedYet(id: String, phase: String) -> VerificationReport {
            VerificationReport(id: id, phase: phase)
        }

        private init(id: String, phase: String) {
            self.id = id
            self.phase = phase
            verifications = 0
            moves = []
        }
    }
}
