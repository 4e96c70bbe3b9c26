@testable import ReshardCore

/// An in-memory shard with the semantics the real stores promise: the version rule, tombstones,
/// a changelog of every insert and update, fences on client writes, and physical deletes that
/// leave no changelog entry.
struct SimShard {
    struct Key: Hashable, Comparable {
        let table: TableName
        let pk: String
        static func < (a: Key, b: Key) -> Bool { (a.table, a.pk) < (b.table, b.pk) }
    }

    var rows: [Key: StoredRow] = [:]
    var log: [Change] = []
    var head: UInt64 = 0
    var fences: [HashRange: UInt64] = [:]

    /// The highest fence over `hash`, if any.
    func fence(over hash: UInt64) -> UInt64? {
        fences.filter { $0.key.contains(hash) }.map(\.value).max()
    }

    mutating func write(_ write: ClientWrite, now: UInt64) -> Result<WriteOutcome, StoreFenced> {
        let hash = KeyHash.of(write.shardKey)
        if let fence = fence(over: hash), fence > write.generation { return .failure(StoreFenced(generation: fence)) }
        let key = Key(table: write.table, pk: write.pk)
        let current = rows[key]
        if write.body == nil && (current?.isDeleted ?? true) { return .success(.notFound) }
        let version = VersionRule.next(current: current?.version, proposed: write.proposedVersion)
        store(StoredRow(table: write.table, pk: write.pk, shardKey: write.shardKey, version: version, body: write.body), now: now)
        return .success(.written(version: version))
    }

    mutating func apply(_ incoming: [StoredRow], now: UInt64) {
        for row in incoming where VersionRule.replaces(incoming: row.version, stored: rows[Key(table: row.table, pk: row.pk)]?.version) {
            store(row, now: now)
        }
    }

    private mutating func store(_ row: StoredRow, now: UInt64) {
        rows[Key(table: row.table, pk: row.pk)] = row
        head += 1
        log.append(Change(position: head, row: row, atMillis: now))
    }

    func scan(_ table: TableName, _ range: HashRange, after: ScanCursor?, limit: Int) -> [StoredRow] {
        let sorted = rows.values.filter { $0.table == table && range.contains($0.hash) }
            .sorted { ScanCursor(hash: $0.hash, pk: $0.pk) < ScanCursor(hash: $1.hash, pk: $1.pk) }
        let start = after.map { cursor in sorted.filter { cursor < ScanCursor(hash: $0.hash, pk: $0.pk) } } ?? sorted
        return Array(start.prefix(limit))
    }

    mutating func deleteRange(_ range: HashRange, limit: Int) -> Int {
        let doomed = rows.filter { range.contains($0.value.hash) }.keys.sorted().prefix(limit)
        for key in doomed { rows[key] = nil }
        return doomed.count
    }

    mutating func purgeTombstones(before version: UInt64, limit: Int) -> Int {
        let doomed = rows.filter { $0.value.isDeleted && $0.value.version < version }.keys.sorted().prefix(limit)
        for key in doomed { rows[key] = nil }
        return doomed.count
    }

    func changes(after position: UInt64, limit: Int) -> [Change] {
        Array(log.filter { $0.position > position }.prefix(limit))
    }

    func summary(_ table: TableName, _ range: HashRange) -> RangeSummary {
        RangeSummary(of: rows.values.filter { $0.table == table && range.contains($0.hash) })
    }
}

struct StoreFenced: Error {
    let generation: UInt64
}
