import Foundation
import ReshardCore
import ReshardStore

/// Proves a shard-key change's new layout before the switch, repairing what it can.
///
/// The two layouts place rows by different keys, so their ranges cannot be summed side by side;
/// instead every row of the old layout is compared with the new layout's answer for its primary
/// key, at one changelog position. The old layout's rows are read a chunk at a time, each chunk
/// in one snapshot with its shard's position P (`snapshotScan`), and the new layout is drained
/// to exactly P before it is asked: a row lives on one old shard, only that shard's changes
/// touch it, and nothing else writes the new layout before the switch (this is the only
/// migration work running), so the new layout then holds exactly that row as of P, and
/// whatever differs is real. Then, once each old shard's live rows and aggregate checks are read
/// in one snapshot and the new layout is drained to those positions, the new layout must hold
/// exactly as many live rows with the same sums: a row the old layout never had shows there.
///
/// Each difference is classified like a range verification's and repaired from the old layout:
/// a missing or older row by the version rule (the write the changelog would carry), a newer or
/// corrupt one, or one the old layout never had, by overwriting or removing it (nothing but this
/// migration writes the new layout before the switch). Passes repeat up to `maxRepairPasses`
/// until one finds nothing.
struct RelayoutVerifier: Sendable {
    let plan: MigrationPlan
    let relayout: Relayout
    let stores: any StoreDirectory
    let applier: ChangeApplier
    /// Rows per snapshot chunk of the old layout.
    var chunkRows = 1_000

    func verify(_ request: VerificationRequest, now: UInt64) async throws -> MigrationEvent {
        let started = ContinuousClock.now
        var positions = request.positions
        var report = VerificationReport(at: now)
        var move = MoveVerification(move: 0)
        move.subranges = 1
        for pass in 1...max(1, request.maxRepairPasses) {
            move.passes = pass
            let found = try await comparePass(&positions, now: now, move: &move)
            let (counts, aggregates) = try await totals(&positions, checks: request.checks, now: now)
            report.aggregates = aggregates
            var extras = 0
            if counts.old != counts.new { extras = try await removeExtras(move: &move) }
            if found == 0 && extras == 0 && counts.old == counts.new {
                move.clean = true
                break
            }
            if pass == request.maxRepairPasses {
                report.unresolved.append(
                    "layout \(relayout.to.layoutGeneration) of \(relayout.from.name) still differs after \(pass) pass(es): \(counts.old) live rows in the old layout, \(counts.new) in the new"
                )
            }
        }
        move.mismatchedSubranges = move.clean ? 0 : 1
        move.micros = (ContinuousClock.now - started).wholeMicroseconds
        report.moves = [move]
        report.positions = positions
        report.micros = move.micros
        return .verified(report)
    }

    private var writer: LayoutWriter { LayoutWriter(layout: relayout.to, map: plan.source, stores: stores) }

    /// Every old row against the new layout; returns how many differed (all repaired).
    private func comparePass(_ positions: inout [ShardID: UInt64], now: UInt64, move: inout MoveVerification) async throws -> Int {
        var differing = 0
        for source in plan.sources {
            let store = try stores.shardStore(source)
            // One scan of the whole table, not one per owned range: a ring gives a shard hundreds
            // of small ranges, and a snapshot and a drain each would outlast a busy table's writes.
            var cursor: ScanCursor?
            do {
                while true {
                    let chunk = try await store.snapshotScan(table: relayout.from.storage, range: .full, after: cursor, limit: chunkRows)
                    try await drain(source, to: chunk.position, positions: &positions, now: now)
                    let owned = chunk.rows.filter { plan.source.owner(of: $0.hash) == source }
                    let images = RowImage.images(owned, in: relayout.from)
                    move.rowsCompared += images.count
                    let answers = try await newImages(of: images.map(\.pk))
                    for image in images {
                        guard let difference = Self.classify(old: image, new: answers[image.pk] ?? nil) else { continue }
                        differing += 1
                        move.differences[difference, default: 0] += 1
                        move.repaired += try await repair(image, difference)
                    }
                    guard let last = chunk.rows.last, chunk.rows.count == chunkRows else { break }
                    cursor = ScanCursor(hash: last.hash, pk: last.pk)
                }
            }
        }
        return differing
    }

    /// How the new layout's image of a row differs from the old one's (nil: it does not).
    static func classify(old: RowImage, new: RowImage?) -> DiffClass? {
        guard let new else { return old.body == nil ? nil : .missingOnTarget }
        if new.version < old.version { return old.body == nil && new.body == nil ? nil : .olderOnTarget }
        if new.version > old.version { return .newerOnTarget }
        return new.body == old.body ? nil : .corrupt
    }

    /// Makes the new layout hold `old`.
    private func repair(_ old: RowImage, _ difference: DiffClass) async throws -> Int {
        switch difference {
        case .missingOnTarget, .olderOnTarget:
            return try await writer.apply([old])
        case .newerOnTarget, .corrupt, .extraOnTarget:
            try await remove(old.pk)
            return old.body == nil ? 1 : max(1, try await writer.apply([old]))
        }
    }

    /// Removes every trace of `pk` from the new layout: its lookup entry and the rows under each
    /// shard key that entry names.
    private func remove(_ pk: String) async throws {
        guard let lookup = relayout.to.lookup else { return }
        let home = try store(for: pk)
        if let row = try await home.get(table: lookup, pk: pk), let entry = LookupEntry(row: row) {
            for key in Set([entry.key, entry.previous].compactMap { $0 }) {
                _ = try await store(for: key).repair(
                    table: relayout.to.storage, overwrite: [], remove: [LookupEntry.slot(pk: pk, key: key)])
            }
        }
        _ = try await home.repair(table: lookup, overwrite: [], remove: [pk])
    }

    /// The new layout's images of rows `pks`, read side by side (each is two or three point
    /// reads on other shards; one after another they would let a busy table's changelog run
    /// ahead of the comparison).
    private func newImages(of pks: [String]) async throws -> [String: RowImage?] {
        let read = try await concurrentMap(pks, width: LayoutWriter.parallelism) { pk in (pk, try await self.newImage(of: pk)) }
        var answers: [String: RowImage?] = [:]
        for (pk, image) in read { answers[pk] = .some(image) }
        return answers
    }

    /// The new layout's image of row `pk`, read the way a router reads it (nil: no trace).
    private func newImage(of pk: String) async throws -> RowImage? {
        guard let lookup = relayout.to.lookup else {
            let row = try await store(for: pk).get(table: relayout.to.storage, pk: pk)
            return row.map { RowImage(pk: pk, version: $0.version, body: $0.body) }
        }
        return try await RowImage.throughLookup(
            pk, readEntry: { try await store(for: pk).get(table: lookup, pk: pk) }, readSlot: { try await slot(pk, $0) })
    }

    private func slot(_ pk: String, _ key: String) async throws -> StoredRow? {
        try await store(for: key).get(table: relayout.to.storage, pk: LookupEntry.slot(pk: pk, key: key))
    }

    /// Live rows and aggregate checks of both layouts, each old shard read in one snapshot and the
    /// new layout drained to those positions before it is summed.
    private func totals(_ positions: inout [ShardID: UInt64], checks: [AggregateCheck], now: UInt64) async throws
        -> (counts: (old: Int, new: Int), aggregates: [AggregateCheckResult])
    {
        let oldChecks = checks.filter { $0.table == relayout.from.storage }
        let newChecks = oldChecks.compactMap { AggregateCheck(table: relayout.to.storage, field: $0.field) }
        var oldRows = 0
        var oldSums = Array(repeating: DecimalTotal(), count: oldChecks.count)
        var snapshots: [ShardID: UInt64] = [:]
        for source in plan.sources {
            let summary = try await stores.shardStore(source).summarize(
                SummaryRequest(tables: [relayout.from.storage], ranges: plan.ranges(from: source), checks: oldChecks))
            oldRows += (summary.summaries[relayout.from.storage] ?? []).joined().reduce(0) { $0 + $1.liveRows }
            for (index, check) in oldChecks.enumerated() { oldSums[index].add(summary.aggregates[check] ?? []) }
            snapshots[source] = summary.position
        }
        // Every old shard's changelog is drained at once: one after another, each would fall
        // behind the writes its turn left waiting.
        let drained = try await withThrowingTaskGroup(of: (ShardID, UInt64).self) { group in
            for (source, target) in snapshots {
                let applied = positions[source] ?? 0
                guard applied < target else { continue }
                group.addTask { (source, try await applier.drain(.forward, shard: source, after: applied, through: target, now: now)) }
            }
            return try await group.reduce(into: [ShardID: UInt64]()) { $0[$1.0] = $1.1 }
        }
        positions.merge(drained) { max($0, $1) }
        var newRows = 0
        var newSums = Array(repeating: DecimalTotal(), count: newChecks.count)
        for shard in plan.sources {
            let summary = try await stores.shardStore(shard).summarize(
                SummaryRequest(tables: [relayout.to.storage], ranges: [.full], checks: newChecks))
            newRows += (summary.summaries[relayout.to.storage] ?? []).joined().reduce(0) { $0 + $1.liveRows }
            for (index, check) in newChecks.enumerated() { newSums[index].add(summary.aggregates[check] ?? []) }
        }
        let results = oldChecks.indices.map { index in
            AggregateCheckResult(check: oldChecks[index], old: oldSums[index].summary, new: newSums[index].summary)
        }
        return ((oldRows, newRows), results)
    }

    /// Removes the new layout's rows whose primary key the old layout has never had.
    private func removeExtras(move: inout MoveVerification) async throws -> Int {
        guard let lookup = relayout.to.lookup else { return 0 }
        var removed = 0
        for shard in plan.sources {
            var extras: [String] = []
            try await stores.shardStore(shard).forEachChunk(table: lookup) { rows in
                extras += rows.filter { !$0.isDeleted }.map(\.pk)
            }
            for pk in extras where try await oldImage(of: pk) == nil {
                try await remove(pk)
                move.differences[.extraOnTarget, default: 0] += 1
                move.repaired += 1
                removed += 1
            }
        }
        return removed
    }

    /// The old layout's image of row `pk` (nil: it has never had it).
    private func oldImage(of pk: String) async throws -> RowImage? {
        let from = relayout.from
        if from.lookup == nil {
            let row = try await store(for: pk).get(table: from.storage, pk: pk)
            return row.map { RowImage(pk: pk, version: $0.version, body: $0.body) }
        }
        return try await RelayoutVerifier(plan: plan, relayout: Relayout(from: relayout.to, to: from), stores: stores, applier: applier)
            .newImage(of: pk)
    }

    private func drain(_ source: ShardID, to position: UInt64, positions: inout [ShardID: UInt64], now: UInt64) async throws {
        let applied = positions[source] ?? 0
        guard applied < position else { return }
        positions[source] = try await applier.drain(.forward, shard: source, after: applied, through: position, now: now)
    }

    private func store(for key: String) throws -> any ShardStore { try stores.shardStore(plan.source.owner(of: KeyHash.of(key))) }
}

/// An exact decimal total of aggregate summaries.
struct DecimalTotal {
    var rows = 0
    var numeric = 0
    var sum = Decimal(0)

    mutating func add(_ summaries: [AggregateSummary]) {
        for summary in summaries {
            rows += summary.rows
            numeric += summary.numeric
            sum += Decimal(string: summary.sum) ?? 0
        }
    }

    var summary: AggregateSummary { AggregateSummary(rows: rows, numeric: numeric, sum: "\(sum)") }
}
