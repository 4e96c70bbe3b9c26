/// An application-level check a migration may name: the count of live rows of `table` and the
/// sum of its numeric JSON field `field`, compared between the old and the new owners.
public struct AggregateCheck: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The table summed.
    public let table: TableName
    /// A top-level JSON field of the rows, `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    public let field: String

    /// A check; `nil` when `field` is not a plain field name (it becomes part of a JSON path).
    public init?(table: TableName, field: String) {
        guard Self.isFieldName(field) else { return nil }
        self.table = table
        self.field = field
    }

    /// Parses `table.field`.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let table = TableName(String(parts[0])) else { return nil }
        self.init(table: table, field: String(parts[1]))
    }

    /// `table.field`.
    public var description: String { "\(table).\(field)" }

    static func isFieldName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F }
        guard let first = bytes.first, bytes.count <= 63, isLetter(first) else { return false }
        return bytes.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }

    private enum CodingKeys: String, CodingKey { case table, field }

    /// Decodes and validates.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let table = try container.decode(TableName.self, forKey: .table)
        let field = try container.decode(String.self, forKey: .field)
        guard let check = AggregateCheck(table: table, field: field) else {
            throw DecodingError.dataCorruptedError(forKey: .field, in: container, debugDescription: "invalid field name \(field)")
        }
        self = check
    }
}

/// Live rows and the exact sum of one numeric field over a range.
public struct AggregateSummary: Hashable, Sendable, Codable {
    /// Live rows in the range.
    public var rows: Int
    /// Live rows whose field is a JSON number.
    public var numeric: Int
    /// The exact decimal sum of those numbers, as text (no binary floating point on the way).
    public var sum: String

    /// A summary from its parts.
    public init(rows: Int, numeric: Int, sum: String) {
        self.rows = rows
        self.numeric = numeric
        self.sum = sum
    }
}

/// One aggregate check's outcome over every move.
public struct AggregateCheckResult: Hashable, Sendable, Codable {
    /// The check.
    public let check: AggregateCheck
    /// Over the moving ranges on the old owners.
    public let old: AggregateSummary
    /// Over the moving ranges on the new owners.
    public let new: AggregateSummary

    /// A result.
    public init(check: AggregateCheck, old: AggregateSummary, new: AggregateSummary) {
        self.check = check
        self.old = old
        self.new = new
    }

    /// Whether counts and sums agree.
    public var matches: Bool { old == new }
}

/// The verification of one move.
public struct MoveVerification: Hashable, Sendable, Codable {
    /// Index into the plan's moves.
    public let move: Int
    /// Rows (tombstones included) on the old owner when first compared, over every table.
    public var rowsCompared: Int
    /// Sub-ranges compared per table in the first pass.
    public var subranges: Int
    /// Sub-ranges whose count or checksum differed, over every pass and table.
    public var mismatchedSubranges: Int
    /// Differences found by the row-by-row diffs, by class.
    public var differences: [DiffClass: Int]
    /// Rows repaired on the new owner.
    public var repaired: Int
    /// Comparison passes (1 when the first was clean; each repair is followed by another).
    public var passes: Int
    /// Whether the last pass found both sides equal.
    public var clean: Bool
    /// Time spent on this move, microseconds.
    public var micros: UInt64

    /// A move not compared yet.
    public init(move: Int) {
        self.move = move
        rowsCompared = 0
        subranges = 0
        mismatchedSubranges = 0
        differences = [:]
        repaired = 0
        passes = 0
        clean = false
        micros = 0
    }

    /// Differences of every class.
    public var differenceCount: Int { differences.values.reduce(0, +) }
}

/// The proof of a migration: every move compared, differences found and repaired, aggregate
/// checks, at the old owners' changelog positions the new owners were drained to.
public struct VerificationReport: Hashable, Sendable, Codable {
    /// When it started (milliseconds of wall time).
    public let at: UInt64
    /// Per move, in plan order.
    public var moves: [MoveVerification]
    /// The application-level checks the migration named.
    public var aggregates: [AggregateCheckResult]
    /// The old owners' changelog positions the last pass reflects (the new owners were drained to them).
    public var positions: [ShardID: UInt64]
    /// Sub-ranges still different after the last repair pass, described.
    public var unresolved: [String]
    /// Wall time of the whole verification, microseconds.
    public var micros: UInt64

    /// An empty report started at `at`.
    public init(at: UInt64) {
        self.at = at
        moves = []
        aggregates = []
        positions = [:]
        unresolved = []
        micros = 0
    }

    /// Whether the migration may switch: every move clean and every aggregate check equal.
    public var passed: Bool { unresolved.isEmpty && moves.allSatisfy(\.clean) && aggregates.allSatisfy(\.matches) }

    /// Differences found over every move, by class.
    public var differences: [DiffClass: Int] {
        moves.reduce(into: [:]) { total, move in
            for (kind, count) in move.differences { total[kind, default: 0] += count }
        }
    }

    /// Rows repaired over every move.
    public var repaired: Int { moves.reduce(0) { $0 + $1.repaired } }

    /// Rows compared over every move.
    public var rowsCompared: Int { moves.reduce(0) { $0 + $1.rowsCompared } }

    /// Why it did not pass, in a few words each.
    public var problems: [String] {
        unresolved
            + aggregates.filter { !$0.matches }.map { result in
                "\(result.check): old \(result.old.rows) rows, sum \(result.old.sum); new \(result.new.rows) rows, sum \(result.new.sum)"
            }
    }
}
