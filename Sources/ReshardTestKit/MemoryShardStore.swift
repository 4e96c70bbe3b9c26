import Foundation
import ReshardCore
import ReshardStore
import Synchronization

/// A shard held in memory, for simulations and tests that need many shards and no disk. It
/// passes the same conformance suite as SQLite and PostgreSQL (the version rule, tombstones,
/// `(hash, pk)` scans, checksums, a changelog whose positions only grow, fences checked inside
/// every client write), so code tested over it behaves the same over the real ones.
///
/// Every operation first calls `faults` (outside the store's lock), which may throw (a failing
/// or crashed shard), move a manual clock on (a slow one), or run other work in between (client
/// writes interleaving with the migrator's steps): the simulation's hand on the timeline.
public final class MemoryShardStore: ShardStore {
    /// What the store is about to do, for fault injection.
    public enum Operation: String, Sendable, CaseIterable {
        case ensureTable, write, read, rows, deleteRange, purgeTombstones, summarize, snapshotScan, repair, apply, scan, summary
        case openChangeStream, changes, closeChangeStream, changeStreams, changePosition, purgeChanges, fence, removeFences, fences
        case tables, place, retire, unretire, retired, clearTable, dropTable
    }

    /// Called before each operation; throwing fails it before it changes anything.
    public typealias Faults = @Sendable (ShardID, Operation) async throws -> Void

    /// Deliberate bugs, each breaking one invariant of DESIGN.md, for checking that the
    /// simulation catches it (a checker that passes a broken store proves nothing).
    public enum Mutation: String, Sendable, CaseIterable {
        /// Client writes ignore fences: a stale router writes behind a cutover (invariant 4).
        case ignoreFences
        /// The migrator's rows replace stored ones whatever their version (invariant 3).
        case applyOlderVersions
        /// Deletes are left out of the changelog, so tombstones never replicate (invariant 2).
        case forgetDeletes
        /// A changelog read drops the last change it should deliver but reports it delivered
        /// (invariants 1 and 5).
        case skipLastChange
    }

    private struct State {
        // (A `didSet` that does not read the old value lets the dictionaries change in place.)
        var tables: [TableName: [String: StoredRow]] = [:] { didSet { edits &+= 1 } }
        var changelog: [Change] = []
        /// The last position handed out; survives purges, as SQLite's sequence does.
        var head: UInt64 = 0
        var fences: [HashRange: UInt64] = [:] { didSet { edits &+= 1 } }
        /// Changes to rows or fences so far.
        var edits = 0
        var streams: Set<ChangeStreamID> = []
        /// Retired tables and the layout generation each was retired for.
        var retired: [TableName: UInt64] = [:]
        /// Every time a row was replaced by an older version of itself (invariant 3), as it
        /// happened: an observer's record, for checks, not a rule the store applies.
        var regressions: [String] = []

        /// Stores `row`, noting a replacement by an older version.
        mutating func put(_ row: StoredRow) {
            if let old = tables[row.table]?[row.pk], row.version < old.version {
                regressions.append("\(row.table)/\(row.pk) v\(old.version) replaced by older v\(row.version)")
            }
            tables[row.table]?[row.pk] = row
        }

        func fence(over hash: UInt64) -> UInt64? {
            fences.filter { $0.key.contains(hash) }.values.max()
        }

        func rows(_ table: TableName) throws -> [String: StoredRow] {
            guard let rows = tables[table] else { throw StoreError.unknownTable(table) }
            return rows
        }

        func scan(_ table: TableName, _ range: HashRange, after cursor: ScanCursor?, limit: Int) throws -> [StoredRow] {
            let inRange = try rows(table).values.filter { row in
                range.contains(row.hash) && cursor.map { $0 < ScanCursor(hash: row.hash, pk: row.pk) } ?? true
            }
            return Array(
                inRange.sorted { ScanCursor(hash: $0.hash, pk: $0.pk) < ScanCursor(hash: $1.hash, pk: $1.pk) }.prefix(max(0, limit)))
        }

        mutating func record(_ row: StoredRow, at millis: UInt64) {
            head += 1
            changelog.append(Change(position: head, row: row, atMillis: millis))
        }
    }

    /// The shard this store serves.
    public let shardID: ShardID
    private let state = Mutex(State())
    private let faults: Faults?
    private let mutations: Set<Mutation>
    private let wallMillis: @Sendable () -> UInt64

    /// An empty shard; `wallMillis` stamps its changelog (a manual clock's in a simulation).
    public init(
        shardID: ShardID, wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
        faults: Faults? = nil, mutations: Set<Mutation> = []
    ) {
        self.shardID = shardID
        self.wallMillis = wallMillis
        self.faults = faults
        self.mutations = mutations
    }

    private func locked<T>(_ operation: Operation, _ body: (inout State) throws -> T) async throws -> T {
        try await faults?(shardID, operation)
        return try state.withLock { try body(&$0) }
    }

    /// Every row of every table, for invariant checks that look behind the API.
    public var allRows: [StoredRow] { state.withLock { $0.tables.values.flatMap(\.values) } }

    /// The highest fence over `hash`, read without the fault hook (invariant checks).
    public func fence(over hash: UInt64) -> UInt64? { state.withLock { $0.fence(over: hash) } }

    /// The open change streams, read without the fault hook (end-of-run checks).
    public var openStreams: Set<ChangeStreamID> { state.withLock { $0.streams } }

    /// Overwrites a row whatever its version, with no changelog entry: a corrupt copy planted by
    /// a simulation (the canary must catch it, verification must repair it).
    public func plant(_ row: StoredRow) {
        state.withLock { $0.tables[row.table]?[row.pk] = row }
    }

    /// Every replacement of a row by an older version of itself so far (none, if invariant 3 holds).
    public var regressions: [String] { state.withLock { $0.regressions } }

    /// Changes to rows or fences so far: a checker that saw the same count saw the same rows.
    public var edits: Int { state.withLock { $0.edits } }

    /// The stored row, read without the fault hook or key checks (invariant checks).
    public func row(table: TableName, pk: String) -> StoredRow? { state.withLock { $0.tables[table]?[pk] } }

    public func ensureTable(_ table: TableName) async throws {
        try await locked(.ensureTable) { state in
            if state.tables[table] == nil { state.tables[table] = [:] }
        }
    }

    public func tables() async throws -> [TableName] {
        try await locked(.tables) { $0.tables.keys.sorted() }
    }

    public func write(_ write: ClientWrite) async throws -> WriteOutcome {
        try await faults?(shardID, .write)
        return try clientWrite(write)
    }

    /// `write` without the fault hook and without suspending: a simulation's clients call it
    /// from inside another operation's hook, to interleave with the migrator's steps.
    public func clientWrite(_ write: ClientWrite) throws -> WriteOutcome {
        try StoreError.check(write)
        let now = wallMillis()
        let ignoreFences = mutations.contains(.ignoreFences)
        let forgetDeletes = mutations.contains(.forgetDeletes)
        return try state.withLock { state in
            let rows = try state.rows(write.table)
            if !ignoreFences, let fence = state.fence(over: KeyHash.of(write.shardKey)), fence > write.generation {
                throw StoreError.fenced(at: fence)
            }
            if let layout = state.retired[write.table] { throw StoreError.retired(write.table, layout: layout) }
            let current = rows[write.pk]
            let live = current.flatMap { $0.isDeleted ? nil : $0.version }
            return WriteOutcome.decide(condition: write.condition, live: live, isDelete: write.body == nil) {
                let version = VersionRule.next(current: current?.version, proposed: write.proposedVersion)
                let row = StoredRow(table: write.table, pk: write.pk, shardKey: write.shardKey, version: version, body: write.body)
                state.put(row)
                if !(forgetDeletes && row.isDeleted) { state.record(row, at: now) }
                return version
            }
        }
    }

    public func get(table: TableName, pk: String) async throws -> StoredRow? {
        try StoreError.check(pk, "primary key")
        return try await locked(.read) { try $0.rows(table)[pk] }
    }

    public func read(table: TableName, pk: String, shardKey: String) async throws -> FencedRead<StoredRow?> {
        try await faults?(shardID, .read)
        return try clientRead(table: table, pk: pk, shardKey: shardKey)
    }

    /// `read` without the fault hook and without suspending (see `clientWrite`).
    public func clientRead(table: TableName, pk: String, shardKey: String) throws -> FencedRead<StoredRow?> {
        try StoreError.check(pk, "primary key")
        try StoreError.check(shardKey, "shard key")
        return try state.withLock { state in
            FencedRead(value: try state.rows(table)[pk], fence: state.fence(over: KeyHash.of(shardKey)), retired: state.retired[table])
        }
    }

    public func rows(table: TableName, shardKey: String, after: String?, limit: Int) async throws -> FencedRead<[StoredRow]> {
        try StoreError.check(shardKey, "shard key")
        if let after { try StoreError.check(after, "primary key") }
        return try await locked(.rows) { state in
            let rows = try state.rows(table).values.filter { row in
                row.shardKey == shardKey && !row.isDeleted && (after.map { $0.utf8.lexicographicallyPrecedes(row.pk.utf8) } ?? true)
            }
            let sorted = rows.sorted { $0.pk.utf8.lexicographicallyPrecedes($1.pk.utf8) }
            return FencedRead(
                value: Array(sorted.prefix(max(0, limit))), fence: state.fence(over: KeyHash.of(shardKey)), retired: state.retired[table])
        }
    }

    public func deleteRange(_ range: HashRange, limit: Int) async throws -> Int {
        try await locked(.deleteRange) { state in
            Self.physicallyDelete(&state, limit: limit) { range.contains($0.hash) }
        }
    }

    public func purgeTombstones(before version: UInt64, limit: Int) async throws -> Int {
        try await locked(.purgeTombstones) { state in
            Self.physicallyDelete(&state, limit: limit) { $0.isDeleted && $0.version < version }
        }
    }

    /// Deletes up to `limit` matching rows over every table, with no changelog entry: cleanup
    /// and garbage collection are not client changes.
    private static func physicallyDelete(_ state: inout State, limit: Int, where matches: (StoredRow) -> Bool) -> Int {
        var deleted = 0
        for table in state.tables.keys.sorted() where deleted < limit {
            let doomed = state.tables[table, default: [:]].values.filter(matches).map(\.pk).sorted().prefix(limit - deleted)
            for pk in doomed { state.tables[table]?[pk] = nil }
            deleted += doomed.count
        }
        return deleted
    }

    public func summarize(_ request: SummaryRequest) async throws -> SnapshotSummary {
        try await locked(.summarize) { state in
            var summaries: [TableName: [[RangeSummary]]] = [:]
            for table in request.tables {
                let rows = try state.rows(table).values
                summaries[table] = request.ranges.map { range in
                    var parts = Array(repeating: RangeSummary.empty, count: range.split(into: request.parts).count)
                    for row in rows where range.contains(row.hash) {
                        parts[parts.count == 1 ? 0 : range.subrangeIndex(of: row.hash, parts: request.parts)].add(row)
                    }
                    return parts
                }
            }
            var aggregates: [AggregateCheck: [AggregateSummary]] = [:]
            for check in request.checks {
                let rows = try state.rows(check.table).values.filter { !$0.isDeleted }
                aggregates[check] = request.ranges.map { range in
                    Self.aggregate(rows.filter { range.contains($0.hash) }, field: check.field)
                }
            }
            return SnapshotSummary(position: state.head, summaries: summaries, aggregates: aggregates)
        }
    }

    /// Live rows and the exact decimal sum of `field` where it is a JSON number.
    private static func aggregate(_ rows: [StoredRow], field: String) -> AggregateSummary {
        var summary = AggregateSummary(rows: rows.count, numeric: 0, sum: "0")
        var sum = Decimal(0)
        for row in rows {
            guard let body = row.body, let members = try? JSONDecoder().decode([String: NumberOrOther].self, from: Data(body.utf8)),
                case .number(let value) = members[field]
            else { continue }
            summary.numeric += 1
            sum += value
        }
        summary.sum = "\(sum)"
        return summary
    }

    public func snapshotScan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> RowsAtPosition {
        try await locked(.snapshotScan) { state in
            RowsAtPosition(position: state.head, rows: try state.scan(table, range, after: cursor, limit: limit))
        }
    }

    public func repair(table: TableName, overwrite rows: [StoredRow], remove pks: [String]) async throws -> Int {
        let now = wallMillis()
        return try await locked(.repair) { state in
            let stored = try state.rows(table)
            for row in rows where row.table != table { throw StoreError.backend("repair of \(table) was given a row of \(row.table)") }
            // Overwrites are written like client rows (SQLite's triggers see them too); removals
            // leave no trace: the old owner never had those rows.
            for row in rows {
                state.put(row)
                state.record(row, at: now)
            }
            let removed = pks.filter { stored[$0] != nil }.count
            for pk in pks { state.tables[table]?[pk] = nil }
            return rows.count + removed
        }
    }

    public func apply(_ rows: [StoredRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        return try await locked(.apply) { state in try applyLocked(rows, &state) }
    }

    public func writeSecond(_ row: StoredRow, routedBy generation: UInt64) async throws -> Bool {
        try await faults?(shardID, .apply)
        return try clientWriteSecond(row, routedBy: generation)
    }

    /// `writeSecond` without the fault hook and without suspending, for a simulation's routers,
    /// like `clientWrite`.
    public func clientWriteSecond(_ row: StoredRow, routedBy generation: UInt64) throws -> Bool {
        try StoreError.check(row.pk, "primary key")
        let ignoreFences = mutations.contains(.ignoreFences)
        return try state.withLock { state in
            if !ignoreFences, let fence = state.fence(over: row.hash), fence > generation { throw StoreError.fenced(at: fence) }
            if let layout = state.retired[row.table] { throw StoreError.retired(row.table, layout: layout) }
            return try applyLocked([row], &state) > 0
        }
    }

    public func place(_ placement: Placement) async throws -> PlacementOutcome {
        try await faults?(shardID, .place)
        return try clientPlace(placement)
    }

    /// `place` without the fault hook and without suspending, for a simulation's routers, like
    /// `clientWrite`.
    public func clientPlace(_ placement: Placement) throws -> PlacementOutcome {
        let row = placement.row
        try StoreError.check(row.pk, "primary key")
        try StoreError.check(row.shardKey, "shard key")
        if let body = row.body, body.utf8.contains(0) { throw StoreError.invalidBody("holds a NUL byte") }
        let now = wallMillis()
        let ignoreFences = mutations.contains(.ignoreFences)
        let forgetDeletes = mutations.contains(.forgetDeletes)
        return try state.withLock { state in
            let rows = try state.rows(row.table)
            if let generation = placement.generation {
                if !ignoreFences, let fence = state.fence(over: row.hash), fence > generation { throw StoreError.fenced(at: fence) }
                if let layout = state.retired[row.table] { throw StoreError.retired(row.table, layout: layout) }
            }
            let (outcome, version) = placement.decide(stored: rows[row.pk]?.version)
            guard let version else { return outcome }
            var written = row
            written.version = version
            state.put(written)
            if placement.generation != nil && !(forgetDeletes && written.isDeleted) { state.record(written, at: now) }
            return outcome
        }
    }

    private func applyLocked(_ rows: [StoredRow], _ state: inout State) throws -> Int {
        let anyVersion = mutations.contains(.applyOlderVersions)
        // All or nothing, as one transaction would be.
        for table in Set(rows.map(\.table)) where state.tables[table] == nil { throw StoreError.unknownTable(table) }
        var changed = 0
        for row in rows where anyVersion || VersionRule.replaces(incoming: row.version, stored: state.tables[row.table]?[row.pk]?.version) {
            state.put(row)
            changed += 1
        }
        return changed
    }

    public func scan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> [StoredRow] {
        try await locked(.scan) { try $0.scan(table, range, after: cursor, limit: limit) }
    }

    public func summary(table: TableName, range: HashRange) async throws -> RangeSummary {
        try await locked(.summary) { RangeSummary(of: try $0.rows(table).values.filter { range.contains($0.hash) }) }
    }

    public func changeCapture() async throws -> String { "memory" }

    public func close() async {}

    public func openChangeStream(_ stream: ChangeStreamID) async throws -> UInt64 {
        try await locked(.openChangeStream) { state in
            state.streams.insert(stream)
            return state.head
        }
    }

    public func changes(_ stream: ChangeStreamID, after position: UInt64, through: UInt64?, limit: Int) async throws -> ChangeBatch {
        let skipLast = mutations.contains(.skipLastChange)
        return try await locked(.changes) { state in
            let upper = min(state.head, through ?? .max)
            var changes = Array(state.changelog.lazy.filter { $0.position > position && $0.position <= upper }.prefix(max(0, limit)))
            let reached = changes.count < limit ? max(position, upper) : changes.last?.position ?? position
            if skipLast, !changes.isEmpty { changes.removeLast() }
            let backlog = state.head > reached ? Int(state.head - reached) : 0
            let oldest = backlog > 0 ? state.changelog.first { $0.position > reached }?.atMillis : nil
            return ChangeBatch(changes: changes, position: reached, backlog: backlog, oldestPendingMillis: oldest)
        }
    }

    public func closeChangeStream(_ stream: ChangeStreamID) async throws {
        try await locked(.closeChangeStream) { _ = $0.streams.remove(stream) }
    }

    public func changeStreams() async throws -> [ChangeStreamID] {
        try await locked(.changeStreams) { $0.streams.sorted() }
    }

    public func changePosition() async throws -> UInt64 {
        try await locked(.changePosition) { $0.head }
    }

    public func purgeChanges(through position: UInt64) async throws {
        try await locked(.purgeChanges) { $0.changelog.removeAll { $0.position <= position } }
    }

    @discardableResult
    public func fence(_ ranges: [HashRange], generation: UInt64) async throws -> UInt64 {
        try await locked(.fence) { state in
            for range in ranges { state.fences[range] = max(state.fences[range] ?? 0, generation) }
            return state.head
        }
    }

    public func removeFences(_ ranges: [HashRange]) async throws {
        try await locked(.removeFences) { state in
            for range in ranges { state.fences[range] = nil }
        }
    }

    public func retire(_ tables: [TableName], layout: UInt64) async throws -> UInt64 {
        try await locked(.retire) { state in
            for table in tables { state.retired[table] = max(state.retired[table] ?? 0, layout) }
            state.edits &+= 1
            return state.head
        }
    }

    public func unretire(_ tables: [TableName]) async throws {
        try await locked(.unretire) { state in
            for table in tables { state.retired[table] = nil }
            state.edits &+= 1
        }
    }

    public func retired() async throws -> [TableName: UInt64] {
        try await locked(.retired) { $0.retired }
    }

    public func clearTable(_ table: TableName, limit: Int) async throws -> Int {
        try await locked(.clearTable) { state in
            guard let rows = state.tables[table] else { return 0 }
            let gone = rows.keys.sorted().prefix(max(0, limit))
            for pk in gone { state.tables[table]?[pk] = nil }
            return gone.count
        }
    }

    public func dropTable(_ table: TableName) async throws {
        try await locked(.dropTable) { state in
            state.tables[table] = nil
            state.retired[table] = nil
        }
    }

    public func fences() async throws -> [Fence] {
        try await locked(.fences) { state in
            state.fences.map { Fence(range: $0.key, generation: $0.value) }.sorted { $0.range.start < $1.range.start }
        }
    }
}

/// A JSON member's value as an aggregate check sees it: a number (exactly, in decimal) or not.
private enum NumberOrOther: Decodable {
    case number(Decimal)
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() || (try? container.decode(Bool.self)) != nil {
            self = .other
        } else if let value = try? container.decode(Decimal.self) {
            self = .number(value)
        } else {
            self = .other
        }
    }
}
