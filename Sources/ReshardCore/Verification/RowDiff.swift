/// How a new owner's row differs from its old owner's, found by a row-by-row diff of a
/// sub-range whose counts or checksums disagreed.
public enum DiffClass: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    /// The old owner has the row (or its tombstone); the new owner has nothing.
    case missingOnTarget = "missing_on_target"
    /// The new owner has a row the old owner has never seen.
    case extraOnTarget = "extra_on_target"
    /// The new owner holds an older version than the old owner.
    case olderOnTarget = "older_on_target"
    /// The new owner holds a version the old owner never wrote: before the switch only the old
    /// owner gives out versions, so this is corruption too.
    case newerOnTarget = "newer_on_target"
    /// Same version, different content (body or tombstone flag): corruption.
    case corrupt

    /// Orders classes as declared, for stable reports.
    public static func < (lhs: DiffClass, rhs: DiffClass) -> Bool {
        allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
    }
}

/// What repairs one difference, always from the old owner, which is authoritative until the switch.
public enum RepairAction: Hashable, Sendable {
    /// Apply the old owner's row by the version rule (it is strictly newer than what the new owner has).
    case apply(StoredRow)
    /// Replace the new owner's row with the old owner's whatever the versions: the version rule
    /// cannot fix a row whose version is equal or higher but whose content is wrong.
    case overwrite(StoredRow)
    /// Physically remove the new owner's row (no changelog entry): the old owner never had it.
    case remove(table: TableName, pk: String)
}

/// One row that differs between the two sides of a move.
public struct RowDifference: Hashable, Sendable {
    /// The table.
    public let table: TableName
    /// The primary key.
    public let pk: String
    /// How it differs.
    public let kind: DiffClass
    /// The old owner's row, tombstones included.
    public let source: StoredRow?
    /// The new owner's row, tombstones included.
    public let target: StoredRow?

    /// Whether this is a second write that reached the new owner after the compared position:
    /// the new owner is ahead (a newer version, or a row the old owner did not have then) with a
    /// version the old owner holds by now (`sourceNow`, its current version). Routers write the
    /// old owner first, so every second write passes this; a corruption that invents a version
    /// does not.
    public func isLateSecondWrite(sourceNow: UInt64?) -> Bool {
        guard kind == .newerOnTarget || kind == .extraOnTarget, let target, let sourceNow else { return false }
        return sourceNow >= target.version
    }

    /// What makes the new owner's row equal to the old owner's.
    public var repair: RepairAction {
        switch kind {
        case .missingOnTarget, .olderOnTarget:
            // Both come from `source` being non-nil; the guard keeps the optional honest.
            guard let source else { return .remove(table: table, pk: pk) }
            return .apply(source)
        case .newerOnTarget, .corrupt:
            guard let source else { return .remove(table: table, pk: pk) }
            return .overwrite(source)
        case .extraOnTarget:
            return .remove(table: table, pk: pk)
        }
    }

    /// What repairs the difference when it was found after the switch, with `source` the new
    /// owner (which takes client writes) and `target` the old one (fed by reverse replication):
    /// the newer version wins on either side, and nothing is deleted. A row only the old owner
    /// has, or has newer, is one the copy has not carried yet: it goes onto the new owner by the
    /// version rule (`ontoSource`), which can never put it over a newer client write. Everything
    /// else is repaired on the old owner as before the switch, where no client writes.
    public var repairAfterSwitch: (action: RepairAction, ontoSource: Bool) {
        switch kind {
        case .newerOnTarget, .extraOnTarget:
            guard let target else { return (repair, false) }
            return (.apply(target), true)
        case .missingOnTarget, .olderOnTarget, .corrupt:
            return (repair, false)
        }
    }
}

/// Row-by-row comparison of the two sides of a sub-range.
public enum RowDiff {
    /// How `target` differs from `source` (rows with the same table and pk), or `nil` when they
    /// are equal.
    public static func classify(source: StoredRow?, target: StoredRow?) -> DiffClass? {
        switch (source, target) {
        case (nil, nil): return nil
        case (.some, nil): return .missingOnTarget
        case (nil, .some): return .extraOnTarget
        case (.some(let source), .some(let target)):
            if target.version < source.version { return .olderOnTarget }
            if target.version > source.version { return .newerOnTarget }
            return source.body == target.body && source.shardKey == target.shardKey ? nil : .corrupt
        }
    }

    /// Every difference between two row lists of one table, each sorted in `(hash, pk)` scan order
    /// (the order of `ShardStore.scan`), in one merge pass.
    public static func compare(source: [StoredRow], target: [StoredRow]) -> [RowDifference] {
        var differences: [RowDifference] = []
        var s = 0
        var t = 0
        func note(_ source: StoredRow?, _ target: StoredRow?) {
            guard let kind = classify(source: source, target: target), let row = source ?? target else { return }
            differences.append(RowDifference(table: row.table, pk: row.pk, kind: kind, source: source, target: target))
        }
        while s < source.count || t < target.count {
            guard s < source.count else {
                note(nil, target[t])
                t += 1
                continue
            }
            guard t < target.count else {
                note(source[s], nil)
                s += 1
                continue
            }
            let sourceKey = ScanCursor(hash: source[s].hash, pk: source[s].pk)
            let targetKey = ScanCursor(hash: target[t].hash, pk: target[t].pk)
            if sourceKey < targetKey {
                note(source[s], nil)
                s += 1
            } else if targetKey < sourceKey {
                note(nil, target[t])
                t += 1
            } else {
                note(source[s], target[t])
                s += 1
                t += 1
            }
        }
        return differences
    }
}
