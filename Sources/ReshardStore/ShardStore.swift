import ReshardCore

/// One storage backend holding rows of every table for the ranges it owns.
///
/// Every implementation passes the shared conformance suite: the version rule of invariant 3,
/// tombstones, `(hash, pk)`-ordered chunked scans, order-independent checksums, a changelog with
/// positions that only grow, and fences checked inside every client write transaction.
public protocol ShardStore: Sendable {
    /// The shard this store serves.
    var shardID: ShardID { get }

    /// Creates the storage of `table` if it does not exist yet; harmless to repeat.
    func ensureTable(_ table: TableName) async throws

    /// A client write: checks fences at `write.generation`, assigns the version inside the
    /// transaction, and records the change in the changelog.
    func write(_ write: ClientWrite) async throws -> WriteOutcome

    /// The stored row, tombstones included; `nil` when the shard has never seen `pk`.
    func get(table: TableName, pk: String) async throws -> StoredRow?

    /// A client read of row `pk` placed by `shardKey`: the row (tombstones included) and the
    /// highest fence over the key's hash, read in one snapshot so the router can tell whether a
    /// newer map may own the key.
    func read(table: TableName, pk: String, shardKey: String) async throws -> FencedRead<StoredRow?>

    /// Live rows of `table` whose shard key is `shardKey`, in primary-key (byte) order, only
    /// those after primary key `after` when it is set, with the fence over that key like `read`.
    func rows(table: TableName, shardKey: String, after: String?, limit: Int) async throws -> FencedRead<[StoredRow]>

    /// Physically deletes up to `limit` rows of every table whose hash is in `range` and returns
    /// how many went. No changelog entry: this is cleanup of moved data, never a client change.
    func deleteRange(_ range: HashRange, limit: Int) async throws -> Int

    /// Physically deletes up to `limit` tombstones, over every table, whose version is below
    /// `version`, and returns how many went. No changelog entry: garbage collection is not a
    /// client change.
    func purgeTombstones(before version: UInt64, limit: Int) async throws -> Int

    /// Every table's counts and checksums over each of the request's ranges cut into
    /// `request.parts` sub-ranges (`HashRange.split(into:)`), its aggregate checks, and the
    /// changelog position they reflect, read in one snapshot: the figures are exactly the state
    /// after that position.
    func summarize(_ request: SummaryRequest) async throws -> SnapshotSummary

    /// Like `scan`, together with the changelog position the rows reflect, read in one snapshot.
    func snapshotScan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> RowsAtPosition

    /// Verification's repair of a shard that does not own these rows yet: each of `rows` replaces
    /// the stored row whatever its version (a corrupt copy can carry the true version, so the
    /// version rule cannot fix it), and each of `remove` is deleted physically, with no changelog
    /// entry (the old owner never had it). Never used on a shard that accepts client writes to the
    /// rows. Returns how many rows changed.
    func repair(table: TableName, overwrite rows: [StoredRow], remove pks: [String]) async throws -> Int

    /// Migrator path (copies and changes): each row replaces the stored one only when strictly
    /// newer; fences do not apply. Returns how many rows changed. These rows are not client
    /// changes and no change stream needs them (a target's reverse stream is there for the
    /// client writes it takes after the switch): SQLite leaves them out of its changelog;
    /// PostgreSQL's logical decoding cannot, and a stream that delivers one back to its origin
    /// changes nothing there (same version).
    func apply(_ rows: [StoredRow]) async throws -> Int

    /// A router's second write (`dual_write`): `row` at the version its old owner gave, replacing
    /// the stored row only when strictly newer, like `apply` (and like it, no change stream
    /// needs it), unless a fence over the row's hash is above `generation`, the map generation
    /// the router wrote by: then nothing is written and `StoreError.fenced` is thrown. A
    /// migration rolled back before its switch fences its copies, so a router that has not yet
    /// heard of the rollback cannot leave rows behind on a shard that does not own them. Returns
    /// whether the row changed.
    func writeSecond(_ row: StoredRow, routedBy generation: UInt64) async throws -> Bool

    /// One write of the primary-key lookup protocol (`Placement`, `LookupEntry`): the fence check
    /// when `placement.generation` is set (a router's write, which is then in the changelog like
    /// a client write; without it the migrator's, which fences do not stop), then the
    /// compare-and-set and the version decision of `Placement.decide`, all in one transaction.
    func place(_ placement: Placement) async throws -> PlacementOutcome

    /// Up to `limit` rows of `table` in `range`, tombstones included, in `(hash, pk)` order,
    /// starting after `cursor`.
    func scan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> [StoredRow]

    /// Count and checksum of the rows of `table` in `range`, tombstones included.
    func summary(table: TableName, range: HashRange) async throws -> RangeSummary

    /// How this shard captures its changes, for status ("triggers", "logical decoding", …).
    func changeCapture() async throws -> String

    /// Opens change stream `stream` (idempotent) and returns a position from which it delivers
    /// every change committed later. A migration opens one on each shard it reads changes of,
    /// before it copies anything (PostgreSQL: a logical replication slot, which keeps the WAL
    /// the stream has not consumed, so it must be closed when the migration ends).
    func openChangeStream(_ stream: ChangeStreamID) async throws -> UInt64

    /// The changes of stream `stream` committed after `position` (and at or before `through`,
    /// when given), oldest first, whole transactions only, about `limit` of them. Asking for
    /// changes after `position` also tells the store that everything up to `position` has been
    /// consumed and may be forgotten.
    func changes(_ stream: ChangeStreamID, after position: UInt64, through: UInt64?, limit: Int) async throws -> ChangeBatch

    /// Closes change stream `stream` and frees what it kept (harmless when it is not open).
    func closeChangeStream(_ stream: ChangeStreamID) async throws

    /// The change streams open on this shard, for the startup sweep of streams whose migration
    /// is gone.
    func changeStreams() async throws -> [ChangeStreamID]

    /// The replication slots of this shard's database, each with the WAL it keeps the server
    /// from recycling, for `/metrics`: empty where no slot keeps changes (SQLite's changelog
    /// table, the in-memory store).
    func replicationSlots() async throws -> [ReplicationSlotUsage]

    /// The current changelog position: every change committed so far is at or before it.
    func changePosition() async throws -> UInt64

    /// Forgets changelog entries up to and including `position`, once no reader needs them.
    func purgeChanges(through position: UInt64) async throws

    /// Refuses client writes to each of `ranges` below `generation` from now on (a higher fence
    /// wins), all in one transaction: the fence step of a cutover runs while writes are held, so
    /// it must cost one commit, not one per range. Returns the changelog position in that same
    /// transaction: every client write the fences let through is at or before it.
    @discardableResult
    func fence(_ ranges: [HashRange], generation: UInt64) async throws -> UInt64

    /// Removes the fences on exactly these ranges, in one transaction.
    func removeFences(_ ranges: [HashRange]) async throws

    /// Every fence on this shard.
    func fences() async throws -> [Fence]

    /// Retires `tables` in one transaction, like `fence` for whole tables: from now on client
    /// writes to them (`write`, `writeSecond`, a router's `place`) are refused with
    /// `StoreError.retired` naming `layout`, the table layout generation that replaced them, and
    /// reads report it. The migrator's writes still pass. Returns the changelog position in that
    /// same transaction: every client write the retirement let through is at or before it.
    @discardableResult
    func retire(_ tables: [TableName], layout: UInt64) async throws -> UInt64

    /// Takes the retirement off `tables` (a switch that was aborted or rolled back).
    func unretire(_ tables: [TableName]) async throws

    /// The retired tables and the layout generation each was retired for.
    func retired() async throws -> [TableName: UInt64]

    /// Physically deletes up to `limit` rows of `table` and returns how many went; no changelog
    /// entry (the cleanup of a layout that is gone, like `deleteRange`).
    func clearTable(_ table: TableName, limit: Int) async throws -> Int

    /// Removes the storage of `table` and its retirement (harmless when it has none).
    func dropTable(_ table: TableName) async throws

    /// Tables that have storage on this shard.
    func tables() async throws -> [TableName]

    /// Releases the store's connections (a PostgreSQL pool); the store is unusable afterwards.
    func close() async
}

extension ShardStore {
    /// No slots: only PostgreSQL keeps changes in them.
    public func replicationSlots() async throws -> [ReplicationSlotUsage] { [] }

    /// Hands every row of `table` in `range` (tombstones included) to `body`, one chunked scan
    /// of `chunk` rows at a time, so memory stays bounded whatever the table's size.
    public func forEachChunk(
        table: TableName, range: HashRange = .full, chunk: Int = 5_000, _ body: ([StoredRow]) throws -> Void
    ) async throws {
        var cursor: ScanCursor?
        while true {
            let rows = try await scan(table: table, range: range, after: cursor, limit: chunk)
            try body(rows)
            guard let last = rows.last, rows.count == chunk else { return }
            cursor = ScanCursor(hash: last.hash, pk: last.pk)
        }
    }
}

/// One replication slot and what it retains.
public struct ReplicationSlotUsage: Sendable, Hashable {
    /// The slot's name (Reshard's are `reshard_<migration>_<database hash>`).
    public var name: String
    /// Whether a session is reading it now.
    public var active: Bool
    /// WAL bytes from the slot's restart point to the server's current position: what it keeps
    /// on disk (nil when the slot has no restart point yet).
    public var retainedBytes: UInt64?

    /// A slot's figures.
    public init(name: String, active: Bool, retainedBytes: UInt64?) {
        self.name = name
        self.active = active
        self.retainedBytes = retainedBytes
    }
}

/// The name of a change stream: a migration's id, `[a-z0-9_]`, 1…40 characters, so that it
/// can be part of a PostgreSQL replication slot name.
public struct ChangeStreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The name.
    public let rawValue: String

    /// Validates `rawValue`.
    public init?(_ rawValue: String) {
        let allowed = rawValue.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_")
        }
        guard (1...40).contains(rawValue.utf8.count), allowed else { return nil }
        self.rawValue = rawValue
    }

    /// The stream of migration `id`: the id itself when it is a legal stream name (ids the
    /// manager generates are), otherwise a digest of it, stable across processes.
    public init(migration id: String) {
        if let valid = ChangeStreamID(id) {
            self = valid
        } else {
            let hex = String(XXHash64.hash(Array(id.utf8)), radix: 16)
            rawValue = "h" + String(repeating: "0", count: 16 - hex.count) + hex
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: ChangeStreamID, rhs: ChangeStreamID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One read of a change stream.
public struct ChangeBatch: Sendable, Hashable {
    /// The changes, oldest first. Changes of one transaction share a position.
    public let changes: [Change]
    /// How far the stream has been read: every change at or before it has been delivered (by
    /// this batch or an earlier one). It can be past the last change when nothing more was
    /// committed, and never passes the `through` asked for.
    public let position: UInt64
    /// Changes known to be waiting after `position` (a lower bound where the backend cannot
    /// count them cheaply).
    public let backlog: Int
    /// When the oldest change waiting after `position` was committed, milliseconds since 1970;
    /// nil when none is known to wait.
    public let oldestPendingMillis: UInt64?

    /// A batch.
    public init(changes: [Change], position: UInt64, backlog: Int, oldestPendingMillis: UInt64?) {
        self.changes = changes
        self.position = position
        self.backlog = backlog
        self.oldestPendingMillis = oldestPendingMillis
    }
}

/// A read and the fence over its key, taken together.
public struct FencedRead<Value: Sendable>: Sendable {
    /// What was read.
    public let value: Value
    /// The highest fence generation over the key, if any.
    public let fence: UInt64?
    /// The layout generation the table was retired for, if it was (`ShardStore.retire`).
    public let retired: UInt64?

    /// A read result.
    public init(value: Value, fence: UInt64?, retired: UInt64? = nil) {
        self.value = value
        self.fence = fence
        self.retired = retired
    }
}

/// What `summarize` computes.
public struct SummaryRequest: Sendable, Hashable {
    /// The tables summed.
    public let tables: [TableName]
    /// The ranges, each summed per sub-range.
    public let ranges: [HashRange]
    /// Sub-ranges per range.
    public let parts: Int
    /// Aggregate checks, each over every range (whole).
    public let checks: [AggregateCheck]

    /// A request.
    public init(tables: [TableName], ranges: [HashRange], parts: Int = 1, checks: [AggregateCheck] = []) {
        self.tables = tables
        self.ranges = ranges
        self.parts = max(1, parts)
        self.checks = checks
    }
}

/// Summaries of several tables and ranges at one changelog position.
public struct SnapshotSummary: Sendable, Hashable {
    /// The changelog position the snapshot reflects.
    public let position: UInt64
    /// `summaries[table][i][j]` covers sub-range `j` of `ranges[i]` (`ranges[i].split(into: parts)`).
    public let summaries: [TableName: [[RangeSummary]]]
    /// `aggregates[check][i]` covers `ranges[i]`.
    public let aggregates: [AggregateCheck: [AggregateSummary]]

    /// A snapshot summary.
    public init(position: UInt64, summaries: [TableName: [[RangeSummary]]], aggregates: [AggregateCheck: [AggregateSummary]] = [:]) {
        self.position = position
        self.summaries = summaries
        self.aggregates = aggregates
    }
}

/// Rows of a scan and the changelog position they reflect.
public struct RowsAtPosition: Sendable, Hashable {
    /// The changelog position.
    public let position: UInt64
    /// The rows, in scan order.
    public let rows: [StoredRow]

    /// Rows read at `position`.
    public init(position: UInt64, rows: [StoredRow]) {
        self.position = position
        self.rows = rows
    }
}

/// A store failure that callers handle: a write refused by a fence, a table with no storage,
/// or the backend failing.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case fenced(UInt64)
        case retired(TableName, layout: UInt64)
        case unknownTable(TableName)
        case invalidKey(String, RowKey.Problem)
        case invalidBody(String)
        case backend(String)
    }

    private let code: Code

    /// A client write with a generation below the fence `generation` of its range.
    public static func fenced(at generation: UInt64) -> StoreError { StoreError(code: .fenced(generation)) }
    /// A client write to a table retired when layout generation `layout` replaced it.
    public static func retired(_ table: TableName, layout: UInt64) -> StoreError { StoreError(code: .retired(table, layout: layout)) }
    /// The table has no storage on this shard.
    public static func unknownTable(_ table: TableName) -> StoreError { StoreError(code: .unknownTable(table)) }
    /// A key that breaks `RowKey`'s rule: refused before it reaches SQL, on every backend alike.
    public static func invalidKey(_ what: String, _ problem: RowKey.Problem) -> StoreError {
        StoreError(code: .invalidKey(what, problem))
    }
    /// A row body no backend could store exactly (it holds a NUL byte, which SQLite's text
    /// binding would cut off and PostgreSQL's `text` rejects).
    public static func invalidBody(_ reason: String) -> StoreError { StoreError(code: .invalidBody(reason)) }
    /// The backend failed; the message is the backend's.
    public static func backend(_ message: String) -> StoreError { StoreError(code: .backend(message)) }

    /// The fence generation when the write was fenced.
    public var fenceGeneration: UInt64? {
        if case .fenced(let generation) = code { return generation }
        return nil
    }

    /// The layout generation that replaced the table, when a write met its retirement.
    public var retiredLayout: UInt64? {
        if case .retired(_, let layout) = code { return layout }
        return nil
    }

    /// Whether the table had no storage.
    public var isUnknownTable: Bool {
        if case .unknownTable = code { return true }
        return false
    }

    /// Whether the request itself was malformed (a key or body no backend stores exactly).
    public var isInvalidInput: Bool {
        switch code {
        case .invalidKey, .invalidBody: true
        case .fenced, .retired, .unknownTable, .backend: false
        }
    }

    /// Throws `invalidKey` unless `key` follows `RowKey`'s rule. Every backend calls it on each
    /// key a client request hands it, before any SQL, so a key is refused the same way
    /// everywhere instead of being cut short by one backend and rejected by another.
    public static func check(_ key: String, _ what: String) throws(StoreError) {
        if let problem = RowKey.problem(key, limit: RowKey.maxStoredBytes) { throw invalidKey(what, problem) }
    }

    /// Throws unless `write`'s keys follow `RowKey`'s rule and its body holds no NUL byte.
    public static func check(_ write: ClientWrite) throws(StoreError) {
        try check(write.pk, "primary key")
        try check(write.shardKey, "shard key")
        if let body = write.body, body.utf8.contains(0) { throw invalidBody("holds a NUL byte") }
    }

    /// A sentence for logs.
    public var description: String {
        switch code {
        case .fenced(let generation): "range fenced at generation \(generation)"
        case .retired(let table, let layout): "table \(table) was retired for layout generation \(layout)"
        case .unknownTable(let table): "table \(table) has no storage on this shard"
        case .invalidKey(let what, let problem): "the \(what) \(problem)"
        case .invalidBody(let reason): "the body \(reason)"
        case .backend(let message): "shard backend failed: \(message)"
        }
    }
}
