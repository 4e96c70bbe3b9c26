/// A write of the placement protocol: one row, written by the rules a caller picks.
///
/// A table whose layout is placed by a field other than its primary key keeps a primary-key
/// lookup (`PrimaryKeyLookup`); writing one of its rows touches up to four shards (the lookup
/// entry's, the row's new and old places), and each touch is one `Placement`.
public struct Placement: Sendable, Hashable {
    /// What the stored row must be for the write to happen, checked inside its transaction.
    public enum Expectation: Sendable, Hashable {
        /// No row (not even a tombstone) is stored under the key.
        case absent
        /// The stored row has exactly this version.
        case version(UInt64)
    }

    /// The row; its version is the one proposed (`assignsVersion`) or the one written.
    public let row: StoredRow
    /// The compare-and-set condition, if any.
    public let expected: Expectation?
    /// Whether the shard assigns the version as for a client write (`VersionRule.next`, with
    /// `row.version` proposed); otherwise the row keeps `row.version` and replaces the stored row
    /// only when strictly newer (invariant 3).
    public let assignsVersion: Bool
    /// The shard-map generation a router routed by: fences apply and the write is a client change
    /// (it is in the changelog). Nil for the migrator's writes, which pass fences like `apply`.
    public let generation: UInt64?

    /// A placement.
    public init(row: StoredRow, expected: Expectation? = nil, assignsVersion: Bool = false, generation: UInt64?) {
        self.row = row
        self.expected = expected
        self.assignsVersion = assignsVersion
        self.generation = generation
    }

    /// What the placement does to a stored row of version `stored` (nil: none): the outcome, and
    /// the version to write when it writes. Every backend decides by this one function.
    public func decide(stored: UInt64?) -> (outcome: PlacementOutcome, write: UInt64?) {
        switch expected {
        case .absent where stored != nil: return (.conflict(stored: stored), nil)
        case .version(let version) where stored != version: return (.conflict(stored: stored), nil)
        default: break
        }
        if assignsVersion {
            let version = VersionRule.next(current: stored, proposed: row.version)
            return (.written(version: version), version)
        }
        guard VersionRule.replaces(incoming: row.version, stored: stored) else { return (.notNewer(stored: stored ?? 0), nil) }
        return (.written(version: row.version), row.version)
    }
}

/// What a placement did.
public enum PlacementOutcome: Sendable, Hashable {
    /// The row was written with this version.
    case written(version: UInt64)
    /// The row keeps its version and was not written: the stored one is as new or newer.
    case notNewer(stored: UInt64)
    /// The stored row was not what the placement expected (nil: none); nothing was written.
    case conflict(stored: UInt64?)
}

/// One entry of a primary-key lookup: where row `pk` lives, stored as a row of the lookup's
/// table placed by `pk` itself, whose version is the version of the write that made it.
///
/// Writes of one primary key are serialised by a compare-and-set on its entry: each writer
/// reads the entry, claims the next version by replacing it (`Placement.expected`), writes the
/// row at its shard key with exactly that version, then tombstones the places the row left.
/// The entry names where the row was before (`previous`), so a reader that finds the row not yet
/// at `key` with the entry's version (its write is in flight, or its writer died) answers from
/// there: the row as it was before a write that was never acknowledged.
public struct LookupEntry: Hashable, Sendable {
    /// The row's shard key; nil once the row is deleted.
    public let key: String?
    /// The shard key the row lived under before the write that made this entry (nil: nowhere).
    public let previous: String?
    /// The version of that write: the row at `key` has it once the write landed.
    public let version: UInt64

    /// An entry.
    public init(key: String?, previous: String?, version: UInt64) {
        self.key = key
        self.previous = previous
        self.version = version
    }

    /// The entry a lookup row stores, or nil for a tombstone (a deleted row whose entry was
    /// finished) or a body that is not an entry.
    public init?(row: StoredRow) {
        guard let body = row.body else { return nil }
        // Keys hold no control character (RowKey), so a newline cannot be part of one.
        let parts = body.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let key = parts[0].isEmpty ? nil : String(parts[0])
        let previous = parts[1].isEmpty ? nil : String(parts[1])
        for text in [key, previous] { if let text, !RowKey.isValid(text) { return nil } }
        self.init(key: key, previous: previous, version: row.version)
    }

    /// The lookup row of `pk` in lookup table `table` holding this entry.
    public func row(table: TableName, pk: String) -> StoredRow {
        StoredRow(table: table, pk: pk, shardKey: pk, version: version, body: (key ?? "") + "\n" + (previous ?? ""))
    }

    /// The key row `pk` is stored under in a layout with a lookup when placed under shard key
    /// `key`: the shard key's length in UTF-8 bytes, `:`, the shard key, then the primary key.
    ///
    /// Each (primary key, shard key) pair is a place of its own, as the protocol needs: two shard
    /// keys of one row that hash to the same shard would otherwise share the row's one slot
    /// there, and a tombstone or block meant for one would land on the other; and a row that
    /// moves between shard keys leaves a tombstone under the old key's hash in the changelog, so
    /// a range migration carries the move. Rows of one shard key list in primary-key order,
    /// since they share the prefix.
    public static func slot(pk: String, key: String) -> String { "\(key.utf8.count):\(key)\(pk)" }

    /// The primary key and shard key of a stored `slot`; nil when it is not one.
    public static func unslot(_ slot: String) -> (pk: String, key: String)? {
        let bytes = Array(slot.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), (1...4).contains(colon), bytes[0] != UInt8(ascii: "0"),
            bytes[..<colon].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let length = Int(String(decoding: bytes[..<colon], as: UTF8.self)), colon + 1 + length < bytes.count,
            let key = String(validating: bytes[(colon + 1)..<(colon + 1 + length)], as: UTF8.self),
            let pk = String(validating: bytes[(colon + 1 + length)...], as: UTF8.self)
        else { return nil }
        return (pk, key)
    }

    /// Whether the write that made this entry moved the row from one shard key to another: only
    /// then may the row be at neither place with the entry's version for a while.
    public var moved: Bool { key != nil && previous != nil && previous != key }
}

/// The decisions of the primary-key lookup protocol (see `LookupEntry`), pure so that they are
/// tested exhaustively; the router and the migrator do the reads and writes they name.
public enum PrimaryKeyLookup {
    /// What a reader does next.
    public enum ReadStep: Sendable, Hashable {
        /// Answer with this row (nil or a tombstone: not found).
        case answer(StoredRow?)
        /// Read row `pk` under this shard key, then decide again with `afterPrevious`.
        case readPrevious(String)
        /// A write moved on while we read: read the entry again.
        case retry
    }

    /// The first place a reader of `entry` reads (nil: the row is deleted and was nowhere).
    public static func firstRead(_ entry: LookupEntry) -> String? { entry.key ?? entry.previous }

    /// What a reader of `entry` does with the row it read at `firstRead(entry)`.
    public static func afterFirst(_ entry: LookupEntry, row: StoredRow?) -> ReadStep {
        let version = row?.version ?? 0
        guard let key = entry.key else {
            // A delete: the row at `previous` is the row before it until the tombstone lands.
            return version >= entry.version ? .answer(nil) : .answer(row)
        }
        switch landing(of: entry.version, at: row) {
        case .landed:
            // A newer write at this place than the entry we read: it moved on, read it again.
            return version == entry.version ? .answer(row) : .retry
        case .blocked:
            // A later writer found this write not landed and blocked it: it never lands, and
            // the row stayed where it was (or that writer has moved it on: then we retry there).
            guard let previous = entry.previous, previous != key else { return .retry }
            return .readPrevious(previous)
        case .unknown:
            // The write is in flight or its writer died: the row as it was before it.
            guard let previous = entry.previous, previous != key else { return .answer(row) }
            return .readPrevious(previous)
        }
    }

    /// Whether a write of `version` to a live row landed, judged by the row now stored where it
    /// goes.
    public enum Landing: Sendable, Hashable {
        /// It landed (the row there has its version, or a later one replaced it).
        case landed
        /// A tombstone of exactly its version is there: a later writer blocked it, so it never lands.
        case blocked
        /// Not yet: it is in flight, or its writer died.
        case unknown
    }

    /// How a write of `version` that puts a live row at some place stands, given `row`, the row
    /// stored there now.
    public static func landing(of version: UInt64, at row: StoredRow?) -> Landing {
        guard let row, row.version >= version else { return .unknown }
        return row.version == version && row.isDeleted ? .blocked : .landed
    }

    /// What a reader does with the row it read at `entry.previous` (`readPrevious`).
    public static func afterPrevious(_ entry: LookupEntry, row: StoredRow?) -> ReadStep {
        // The writer has moved past its own tombstone of this place: the write landed.
        (row?.version ?? 0) >= entry.version ? .retry : .answer(row)
    }

    /// What a writer must know about the current entry before it claims the next version.
    public enum Truth: Sendable, Hashable {
        /// The row lives under this key (nil: nowhere) as far as the entry can say.
        case known(String?)
        /// The entry's write moved the row and may not have landed: read the row at `entry.key`
        /// and, when its version is below the entry's, block the write with a tombstone of the
        /// entry's version there (`blocked`), so it can never land and the row stays at `previous`.
        case checkLanding(key: String, previous: String, version: UInt64)
    }

    /// Where the row lives before a new write, as far as `entry` tells (nil entry: no row).
    public static func truth(_ entry: LookupEntry?) -> Truth {
        guard let entry else { return .known(nil) }
        guard let key = entry.key else { return .known(entry.previous) }
        guard let previous = entry.previous, previous != key else { return .known(key) }
        return .checkLanding(key: key, previous: previous, version: entry.version)
    }

    /// The shard keys a write that leaves the row under `newKey` (nil: deleted) tombstones once
    /// its own row is written: every place the current entry names besides the new one, so a
    /// writer that died before its own tombstones leaves no copy behind once the next write ends.
    public static func leftBehind(_ entry: LookupEntry?, newKey: String?) -> [String] {
        guard let entry else { return [] }
        var keys: [String] = []
        for key in [entry.key, entry.previous] {
            if let key, key != newKey, !keys.contains(key) { keys.append(key) }
        }
        return keys
    }
}
