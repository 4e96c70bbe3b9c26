/// The name of one durable log of a migration: each migration has one log of each kind, so a
/// migration's logs are found (and dropped) from its id alone.
public struct MigrationLogID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// What a log holds; each kind is a log of its own, with positions of its own.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// Second writes of dual-writing routers that failed, waiting to be retried.
        case retry
        /// Client writes recorded for traffic replay.
        case replay
    }

    /// The migration the log belongs to.
    public let migration: ChangeStreamID
    /// Which of the migration's logs this is.
    public let kind: Kind

    /// The log `kind` of `migration`.
    public init(migration: ChangeStreamID, kind: Kind) {
        self.migration = migration
        self.kind = kind
    }

    /// "<migration>.<kind>", the key stored in the metadata. A migration's id holds no `.`, so
    /// two logs never share a key.
    public var rawValue: String { "\(migration.rawValue).\(kind.rawValue)" }

    public var description: String { rawValue }

    /// By migration, then kind: the order of `rawValue` too, since `.` sorts before every
    /// character of a migration's id.
    public static func < (lhs: MigrationLogID, rhs: MigrationLogID) -> Bool {
        (lhs.migration, lhs.kind.rawValue) < (rhs.migration, rhs.kind.rawValue)
    }

    /// The most entries one `readLog` returns, whatever its `limit` asks: a reader pages through a
    /// long log rather than holding it all in memory at once.
    public static let readLimits = 1...10_000

    /// `limit` brought into `readLimits`, so that every store pages alike.
    public static func clampedReadLimit(_ limit: Int) -> Int {
        min(max(limit, readLimits.lowerBound), readLimits.upperBound)
    }

    /// Checks an append before a store reads or writes anything, so that every backend refuses
    /// the same appends the same way. Throws `MetadataError.invalidInput` when a body holds NUL
    /// (PostgreSQL's `text` cannot store it, and a body must come back byte-exact). Returns false
    /// when `limit` rules the append out whatever the log holds: a `limit` below 1, or more
    /// bodies than `limit`.
    public static func admits(_ bodies: [String], limit: Int) throws -> Bool {
        for (index, body) in bodies.enumerated() where body.utf8.contains(0) {
            throw MetadataError.invalidInput("log body \(index) contains NUL (U+0000)")
        }
        return limit >= 1 && bodies.count <= limit
    }
}

/// One entry of a migration log.
public struct LogEntry: Hashable, Sendable {
    /// Where it is in its log: positions grow with each append and are never reused.
    public let position: UInt64
    /// What was appended, byte-exact.
    public let body: String

    /// An entry.
    public init(position: UInt64, body: String) {
        self.position = position
        self.body = body
    }
}

/// How full a migration log is, for the bound on appends and for progress shown to operators.
public struct LogStatus: Hashable, Sendable {
    /// The entries it holds now (appended and not trimmed).
    public let entries: Int
    /// The last position ever appended, trimmed or not; 0 if none.
    public let last: UInt64

    /// A status.
    public init(entries: Int, last: UInt64) {
        self.entries = entries
        self.last = last
    }
}

extension LogStatus {
    /// The status of `log` from what the SQL stores keep: the head's last position (0 without a
    /// head) and the position of the oldest entry. Entries are contiguous (appends add right after
    /// the last position, trims remove the oldest), so they number `last - first + 1`, counted
    /// from two index lookups rather than a scan of the log.
    static func stored(_ log: MigrationLogID, last: Int64, first: Int64?) throws -> LogStatus {
        guard last >= 0 else { throw MetadataError.corrupt("log \(log) has last position \(last)") }
        guard let first else { return LogStatus(entries: 0, last: UInt64(last)) }
        guard first >= 1, first <= last, let entries = Int(exactly: last - first + 1) else {
            throw MetadataError.corrupt("log \(log) has an entry at \(first) but its last position is \(last)")
        }
        return LogStatus(entries: entries, last: UInt64(last))
    }

    /// The last position after appending `count` entries to a log in this status, as stored.
    func storedLast(appending count: Int, to log: MigrationLogID) throws -> Int64 {
        // `last` came from a non-negative Int64; positions cannot reach 2^63, but never trap.
        guard let current = Int64(exactly: last) else { throw MetadataError.corrupt("log \(log) is past position 2^63") }
        let (next, overflow) = current.addingReportingOverflow(Int64(count))
        if overflow { throw MetadataError.corrupt("log \(log) is past position 2^63") }
        return next
    }
}

extension LogEntry {
    /// An entry as the SQL stores keep it (a signed 64-bit position).
    static func stored(_ log: MigrationLogID, position: Int64, body: String) throws -> LogEntry {
        guard position >= 1 else { throw MetadataError.corrupt("log \(log) has an entry at position \(position)") }
        return LogEntry(position: UInt64(position), body: body)
    }
}
