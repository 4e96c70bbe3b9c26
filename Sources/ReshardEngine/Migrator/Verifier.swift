import Foundation
import ReshardCore
import ReshardStore

/// Proves every move before the switch, repairing what it can.
///
/// Concurrent writes cannot cause false differences, because every comparison is made at one
/// changelog position: the old owner's figures (or rows) and its changelog position P are read
/// in one snapshot, then the new owner is drained to exactly P before it is read. Before the
/// switch nothing but this migration writes to the new owner's moving ranges, and this work item
/// is the only migration work running while it verifies, so the new owner then holds exactly the
/// old owner's rows as of P: whatever differs is real. Writes after P are compared by the next
/// read at a later position (each repair pass and each diff page takes its own).
///
/// Per move: both sides are summed per sub-range (count and order-independent checksum of pk,
/// version, tombstone and body) in one pass each; only differing sub-ranges are diffed row by
/// row, a page at a time; every difference is classified and repaired from the old owner; the
/// differing sub-ranges are compared again, up to `maxRepairPasses` repairs. Aggregate checks run
/// last, over the repaired data.
///
/// After a switch that came first (`VerificationRequest.afterSwitch`) the sides swap: the new
/// owners take the client writes, so they are read first at their own positions and the old
/// owners are drained to those by reverse replication; a difference is repaired toward the newer
/// version on either side, never by deleting (`RowDifference.repairAfterSwitch`).
struct Verifier: Sendable {
    let plan: MigrationPlan
    let stores: any StoreDirectory
    /// Drains the compared side's changelogs to the positions the comparisons are made at.
    let applier: ChangeApplier
    /// Rows per diff page: bounds memory whatever a sub-range holds.
    var pageRows = 1_000
    /// Forward before the switch (old owners read first); reverse after a switch that came first.
    private var direction = ReplicationDirection.forward

    init(plan: MigrationPlan, stores: any StoreDirectory, applier: ChangeApplier) {
        self.plan = plan
        self.stores = stores
        self.applier = applier
    }

    /// The moves as compared: each from the side read first (whose changelog is drained) to the
    /// other, in the plan's order so that reports index the plan's moves.
    private var moves: [Move] {
        direction == .forward ? plan.moves : plan.moves.map { Move(range: $0.range, source: $0.target, target: $0.source) }
    }

    /// The shards read first.
    private var sources: [ShardID] { direction == .forward ? plan.sources : plan.targets }

    func verify(_ request: VerificationRequest, now: UInt64) async throws -> MigrationEvent {
        if let relayout = plan.relayout {
            return try await RelayoutVerifier(plan: plan, relayout: relayout, stores: stores, applier: applier).verify(request, now: now)
        }
        if request.afterSwitch && direction == .forward {
            var reversed = self
            reversed.direction = .reverse
            return try await reversed.verify(request, now: now)
        }
        let started = ContinuousClock.now
        var run = Run(request: request, tables: stores.tableNames, now: now)
        let first = try await firstPass(run: &run)
        // The bulk pass is shared; each move is charged an equal part of it.
        let share = (ContinuousClock.now - started).wholeMicroseconds / UInt64(max(1, moves.count))
        for index in moves.indices {
            run.report.moves.append(try await verifyMove(index, first: first[index], share: share, run: &run))
        }
        run.report.aggregates = try await aggregates(run: &run)
        run.report.positions = run.positions
        run.report.micros = (ContinuousClock.now - started).wholeMicroseconds
        return .verified(run.report)
    }

    /// What one verification carries from move to move.
    struct Run {
        let request: VerificationRequest
        let tables: [TableName]
        let now: UInt64
        /// How far each old owner's changelog has been applied to the new owners.
        var positions: [ShardID: UInt64]
        var report: VerificationReport

        init(request: VerificationRequest, tables: [TableName], now: UInt64) {
            self.request = request
            self.tables = tables
            self.now = now
            positions = request.positions
            report = VerificationReport(at: now)
        }
    }

    /// One sub-range of one table.
    struct Slice: Hashable {
        let table: TableName
        let range: HashRange
    }

    /// What the first comparison found for one move.
    struct FirstPass {
        var differing: [Slice] = []
        var subranges = 0
        var rowsCompared = 0
    }

    /// Every sub-range of every move compared at once: one snapshot of each old owner for all its
    /// moves, its changelog drained to that snapshot's position, then one snapshot of each new
    /// owner for the moves it receives from that old owner. (Per move, a plan of a ring's few
    /// hundred small moves cost two reads per move; on PostgreSQL each read is a snapshot barrier.)
    private func firstPass(run: inout Run) async throws -> [FirstPass] {
        let parts = run.request.parts(moves: moves.count, tables: run.tables.count)
        var results = Array(repeating: FirstPass(), count: moves.count)
        for source in sources {
            let indices = moves.indices.filter { moves[$0].source == source }
            let old = try await stores.shardStore(source).summarize(
                SummaryRequest(tables: run.tables, ranges: indices.map { moves[$0].range }, parts: parts))
            try await drain(source, to: old.position, run: &run)
            for target in Set(indices.map { moves[$0].target }).sorted() {
                let received = indices.enumerated().filter { moves[$0.element].target == target }
                let new = try await stores.shardStore(target).summarize(
                    SummaryRequest(tables: run.tables, ranges: received.map { moves[$0.element].range }, parts: parts))
                for (position, (sourcePosition, index)) in received.enumerated() {
                    let pieces = moves[index].range.split(into: parts)
                    results[index].subranges = pieces.count
                    for table in run.tables {
                        for (part, piece) in pieces.enumerated() {
                            let before = Self.summary(old, table, sourcePosition, part)
                            results[index].rowsCompared += before.rows
                            if before != Self.summary(new, table, position, part) {
                                results[index].differing.append(Slice(table: table, range: piece))
                            }
                        }
                    }
                }
            }
        }
        return results
    }

    private func verifyMove(_ index: Int, first: FirstPass, share: UInt64, run: inout Run) async throws -> MoveVerification {
        let started = ContinuousClock.now
        let move = moves[index]
        var result = MoveVerification(move: index)
        result.subranges = first.subranges
        result.rowsCompared = first.rowsCompared
        var differing = first.differing
        var repairs = 0
        while true {
            result.passes += 1
            result.mismatchedSubranges += differing.count
            if differing.isEmpty {
                result.clean = true
                break
            }
            if repairs == run.request.maxRepairPasses {
                run.report.unresolved += differing.map {
                    "\($0.table) \($0.range) of move \(move): still differs after \(repairs) repair pass(es)"
                }
                break
            }
            for slice in differing {
                for difference in try await diffAndRepair(slice, move: move, run: &run) {
                    result.differences[difference.kind, default: 0] += 1
                    result.repaired += 1
                }
            }
            repairs += 1
            differing = try await compare(move, suspects: differing, run: &run)
        }
        result.micros = share + (ContinuousClock.now - started).wholeMicroseconds
        return result
    }

    /// The suspect slices whose count or checksum still differ.
    private func compare(_ move: Move, suspects: [Slice], run: inout Run) async throws -> [Slice] {
        let request = SummaryRequest(tables: Array(Set(suspects.map(\.table))).sorted(), ranges: Array(Set(suspects.map(\.range))).sorted())
        let old = try await stores.shardStore(move.source).summarize(request)
        try await drain(move.source, to: old.position, run: &run)
        let new = try await stores.shardStore(move.target).summarize(request)
        var differing: [Slice] = []
        for table in request.tables {
            for (rangeIndex, range) in request.ranges.enumerated() where suspects.contains(Slice(table: table, range: range)) {
                if Self.summary(old, table, rangeIndex, 0) != Self.summary(new, table, rangeIndex, 0) {
                    differing.append(Slice(table: table, range: range))
                }
            }
        }
        return differing
    }

    private static func summary(_ snapshot: SnapshotSummary, _ table: TableName, _ range: Int, _ part: Int) -> RangeSummary {
        guard let ranges = snapshot.summaries[table], ranges.indices.contains(range), ranges[range].indices.contains(part) else {
            return .empty
        }
        return ranges[range][part]
    }

    /// Diffs one slice row by row, a page at a time (each page read with its own position and the
    /// new owner drained to it), and repairs every difference from the old owner.
    private func diffAndRepair(_ slice: Slice, move: Move, run: inout Run) async throws -> [RowDifference] {
        let source = try stores.shardStore(move.source)
        let target = try stores.shardStore(move.target)
        var found: [RowDifference] = []
        var cursor: ScanCursor?
        while true {
            let page = try await source.snapshotScan(table: slice.table, range: slice.range, after: cursor, limit: pageRows)
            try await drain(move.source, to: page.position, run: &run)
            // A full page ends at its last row; a short one covers the rest of the slice.
            let upper = page.rows.count == pageRows ? page.rows.last.map { ScanCursor(hash: $0.hash, pk: $0.pk) } : nil
            let theirs = try await rows(of: target, slice: slice, after: cursor, through: upper)
            var differences = RowDiff.compare(source: page.rows, target: theirs)
            if run.request.secondWrites { differences = try await withoutLateSecondWrites(differences, table: slice.table, source: source) }
            try await repair(differences, table: slice.table, on: target, source: source)
            found += differences
            guard let upper else { return found }
            cursor = upper
        }
    }

    /// `differences` without the second writes a router made after the compared position (a
    /// router that had not yet followed the pause of second writes): repairing one would put an
    /// older version back on the new owner. The slice is compared again at a later position,
    /// which the changelog has carried the write to.
    private func withoutLateSecondWrites(_ differences: [RowDifference], table: TableName, source: any ShardStore) async throws
        -> [RowDifference]
    {
        var kept: [RowDifference] = []
        for difference in differences {
            if difference.kind == .newerOnTarget || difference.kind == .extraOnTarget {
                let now = try await source.get(table: table, pk: difference.pk)
                if difference.isLateSecondWrite(sourceNow: now?.version) { continue }
            }
            kept.append(difference)
        }
        return kept
    }

    /// The new owner's rows of `slice` after `cursor` up to and including `upper` (to the end when nil).
    private func rows(of store: any ShardStore, slice: Slice, after cursor: ScanCursor?, through upper: ScanCursor?) async throws
        -> [StoredRow]
    {
        var rows: [StoredRow] = []
        var next = cursor
        while true {
            let chunk = try await store.scan(table: slice.table, range: slice.range, after: next, limit: pageRows)
            for row in chunk {
                if let upper, upper < ScanCursor(hash: row.hash, pk: row.pk) { return rows }
                rows.append(row)
            }
            guard let last = chunk.last, chunk.count == pageRows else { return rows }
            next = ScanCursor(hash: last.hash, pk: last.pk)
        }
    }

    private func repair(_ differences: [RowDifference], table: TableName, on target: any ShardStore, source: any ShardStore)
        async throws
    {
        var apply: [StoredRow] = []
        var overwrite: [StoredRow] = []
        var remove: [String] = []
        var ontoSource: [StoredRow] = []
        for difference in differences {
            let (action, toSource) = direction == .forward ? (difference.repair, false) : difference.repairAfterSwitch
            switch action {
            case .apply(let row) where toSource: ontoSource.append(row)
            case .apply(let row): apply.append(row)
            case .overwrite(let row): overwrite.append(row)
            case .remove(_, let pk): remove.append(pk)
            }
        }
        // The version rule: a row the copy has not carried yet can never go over a client write.
        if !ontoSource.isEmpty { _ = try await source.apply(ontoSource) }
        if !apply.isEmpty { _ = try await target.apply(apply) }
        if !overwrite.isEmpty || !remove.isEmpty { _ = try await target.repair(table: table, overwrite: overwrite, remove: remove) }
    }

    /// The application-level checks over every move, old owners against new, each move read at
    /// one position as above.
    private func aggregates(run: inout Run) async throws -> [AggregateCheckResult] {
        let checks = run.request.checks
        guard !checks.isEmpty else { return [] }
        var old: [AggregateCheck: DecimalTotal] = [:]
        var new: [AggregateCheck: DecimalTotal] = [:]
        for source in sources {
            let moves = moves.filter { $0.source == source }
            let before = try await stores.shardStore(source).summarize(
                SummaryRequest(tables: [], ranges: moves.map(\.range), checks: checks))
            try await drain(source, to: before.position, run: &run)
            for check in checks { old[check, default: DecimalTotal()].add(before.aggregates[check] ?? []) }
            for (target, ranges) in Dictionary(grouping: moves, by: \.target).mapValues({ $0.map(\.range) }) {
                let after = try await stores.shardStore(target).summarize(SummaryRequest(tables: [], ranges: ranges, checks: checks))
                for check in checks { new[check, default: DecimalTotal()].add(after.aggregates[check] ?? []) }
            }
        }
        return checks.map { check in
            AggregateCheckResult(
                check: check, old: (old[check] ?? DecimalTotal()).summary, new: (new[check] ?? DecimalTotal()).summary)
        }
    }

    private func drain(_ source: ShardID, to position: UInt64, run: inout Run) async throws {
        let applied = run.positions[source] ?? 0
        guard applied < position else { return }
        run.positions[source] = try await applier.drain(
            direction, shard: source, after: applied, through: position, now: run.now)
    }
}

/// Verification outside a migration's run, done exactly as its verifying phase does it (for
/// benchmarks and tools): compares every move of `machine`, repairs what differs, runs the checks.
public enum MigrationVerification {
    /// The report of one verification of `machine`'s moves at wall time `now`.
    public static func run(_ machine: MigrationStateMachine, stores: any StoreDirectory, now: UInt64) async throws -> VerificationReport {
        let applier = ChangeApplier(plan: machine.plan, stream: ChangeStreamID(migration: machine.id), batch: 1_000, stores: stores)
        let request = VerificationRequest(
            positions: machine.forward.mapValues(\.position), subranges: machine.settings.verifySubranges,
            maxRepairPasses: machine.settings.maxRepairPasses, checks: machine.settings.checks,
            secondWrites: machine.settings.strategyInForce.writesSecond)
        guard
            case .verified(let report) = try await Verifier(plan: machine.plan, stores: stores, applier: applier).verify(request, now: now)
        else {
            throw RouterError(.unavailable, "verification", "verification returned no report")
        }
        return report
    }
}
