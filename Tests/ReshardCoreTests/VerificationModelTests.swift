import Testing

@testable import ReshardCore

@Suite struct HashRangeSplitTests {
    @Test(arguments: [
        HashRange.full, HashRange(start: 0, last: 0), HashRange(start: 10, last: 12), HashRange(start: 1 << 63, last: .max),
        HashRange(start: 12_345, last: 98_765_432_100), HashRange(start: .max - 1_000, last: .max),
    ])
    func subrangesTileTheRangeAndIndexAgrees(range: HashRange) {
        for parts in [1, 2, 3, 7, 256] {
            let pieces = range.split(into: parts)
            #expect(pieces.count <= parts)
            #expect(pieces.first?.start == range.start)
            #expect(pieces.last?.last == range.last)
            for (a, b) in zip(pieces, pieces.dropFirst()) { #expect(a.last &+ 1 == b.start) }
            var random = SeededRandom(seed: UInt64(parts))
            let width = range.last - range.start &+ 1  // 0 for the whole space
            let probes =
                [range.start, range.last] + (0..<200).map { _ in range.start &+ (width == 0 ? random.next() : random.next() % width) }
            for hash in probes where range.contains(hash) {
                let index = range.subrangeIndex(of: hash, parts: parts)
                #expect(pieces.indices.contains(index) && pieces[index].contains(hash), "\(range) / \(parts): \(hash)")
            }
        }
    }

    @Test func aRangeNarrowerThanThePartsYieldsOneSubrangePerHash() {
        #expect(HashRange(start: 10, last: 12).split(into: 256) == [10, 11, 12].map { HashRange(start: $0, last: $0) })
        #expect(HashRange.full.split(into: 256).count == 256)
    }
}

@Suite struct RowDiffTests {
    let t = TableName("t")!

    func row(_ pk: String, _ version: UInt64, _ body: String?) -> StoredRow {
        StoredRow(table: t, pk: pk, shardKey: pk, version: version, body: body)
    }

    @Test func everyPairIsClassified() {
        #expect(RowDiff.classify(source: nil, target: nil) == nil)
        #expect(RowDiff.classify(source: row("a", 5, "{}"), target: row("a", 5, "{}")) == nil)
        #expect(RowDiff.classify(source: row("a", 5, nil), target: row("a", 5, nil)) == nil)
        #expect(RowDiff.classify(source: row("a", 5, "{}"), target: nil) == .missingOnTarget)
        #expect(RowDiff.classify(source: row("a", 5, nil), target: nil) == .missingOnTarget)
        #expect(RowDiff.classify(source: nil, target: row("a", 5, "{}")) == .extraOnTarget)
        #expect(RowDiff.classify(source: row("a", 5, "{}"), target: row("a", 4, "{}")) == .olderOnTarget)
        #expect(RowDiff.classify(source: row("a", 5, nil), target: row("a", 4, "{}")) == .olderOnTarget)
        #expect(RowDiff.classify(source: row("a", 5, "{}"), target: row("a", 6, "{}")) == .newerOnTarget)
        #expect(RowDiff.classify(source: row("a", 5, "{\"n\":1}"), target: row("a", 5, "{\"n\":2}")) == .corrupt)
        #expect(RowDiff.classify(source: row("a", 5, nil), target: row("a", 5, "{}")) == .corrupt)
        #expect(RowDiff.classify(source: row("a", 5, "{}"), target: row("a", 5, nil)) == .corrupt)
    }

    @Test func repairsComeFromTheSource() {
        let source = row("a", 5, "{}")
        #expect(RowDifference(table: t, pk: "a", kind: .missingOnTarget, source: source, target: nil).repair == .apply(source))
        #expect(RowDifference(table: t, pk: "a", kind: .olderOnTarget, source: source, target: row("a", 1, "{}")).repair == .apply(source))
        #expect(RowDifference(table: t, pk: "a", kind: .corrupt, source: source, target: row("a", 5, "x")).repair == .overwrite(source))
        #expect(
            RowDifference(table: t, pk: "a", kind: .newerOnTarget, source: source, target: row("a", 9, "{}")).repair == .overwrite(source))
        #expect(RowDifference(table: t, pk: "a", kind: .extraOnTarget, source: nil, target: source).repair == .remove(table: t, pk: "a"))
    }

    @Test func theMergeFindsEveryDifferenceOnce() {
        // Random row sets, each perturbed; the merge must agree with a dictionary comparison.
        var random = SeededRandom(seed: 7)
        for _ in 0..<200 {
            var source: [String: StoredRow] = [:]
            var target: [String: StoredRow] = [:]
            for index in 0..<Int(random.next() % 40) {
                let pk = "k\(index)"
                let original = row(pk, 10 + random.next() % 5, random.next() % 4 == 0 ? nil : "{\"v\":\(random.next() % 3)}")
                switch random.next() % 8 {
                case 0: source[pk] = original
                case 1: target[pk] = original
                case 2:
                    source[pk] = original
                    target[pk] = row(pk, original.version - 1, original.body)
                case 3:
                    source[pk] = original
                    target[pk] = row(pk, original.version, original.body == nil ? "{}" : nil)
                default:
                    source[pk] = original
                    target[pk] = original
                }
            }
            let order: (StoredRow, StoredRow) -> Bool = { ScanCursor(hash: $0.hash, pk: $0.pk) < ScanCursor(hash: $1.hash, pk: $1.pk) }
            let found = RowDiff.compare(source: source.values.sorted(by: order), target: target.values.sorted(by: order))
            let expected = Set(source.keys).union(target.keys).compactMap { pk in
                RowDiff.classify(source: source[pk], target: target[pk]).map { (pk, $0) }
            }
            #expect(found.count == expected.count)
            #expect(Set(found.map { "\($0.pk):\($0.kind)" }) == Set(expected.map { "\($0.0):\($0.1)" }))
        }
    }
}

@Suite struct ShadowReadTests {
    let t = TableName("t")!
    let now: UInt64 = 1_700_000_000_000

    func row(_ version: UInt64, _ body: String?) -> StoredRow { StoredRow(table: t, pk: "a", shardKey: "a", version: version, body: body) }

    @Test func aTargetBehindByARecentWriteIsLagAndAnythingElseIsReal() {
        let recent = HybridLogicalClock.timestamp(millis: now - 200)
        let old = HybridLogicalClock.timestamp(millis: now - 5_000)
        func classify(_ source: StoredRow?, _ target: StoredRow?) -> ShadowOutcome {
            ShadowRead.classify(source: source, target: target, nowMillis: now, lagAllowanceMillis: 1_000)
        }
        #expect(classify(row(recent, "{}"), row(recent, "{}")) == .match)
        #expect(classify(nil, nil) == .match)
        #expect(classify(row(recent, "{}"), nil) == .lag)
        #expect(classify(row(recent + 1, "{}"), row(old, "{}")) == .lag)
        #expect(classify(row(recent, nil), row(old, "{}")) == .lag)
        #expect(classify(row(old, "{}"), nil) == .mismatch(.missingOnTarget))
        #expect(classify(row(old + 1, "{}"), row(old, "{}")) == .mismatch(.olderOnTarget))
        #expect(classify(nil, row(recent, "{}")) == .mismatch(.extraOnTarget))
        #expect(classify(row(old, "{}"), row(recent, "{}")) == .mismatch(.newerOnTarget))
        #expect(classify(row(recent, "{\"n\":1}"), row(recent, "{\"n\":2}")) == .mismatch(.corrupt))
    }
}

@Suite struct GateNameTests {
    @Test func gatesHaveTheirAPINames() {
        #expect(MigrationPhase(gate: "before_cutover") == .cuttingOver)
        #expect(MigrationPhase(gate: "before_cutting_over") == .cuttingOver)
        #expect(MigrationPhase(gate: "before_cleanup") == .cleaningUp)
        #expect(MigrationPhase(gate: "before_canary") == .canary)
        #expect(MigrationPhase(gate: "before_copying") == .copying)
        #expect(MigrationPhase(gate: "before_baking") == nil)
        #expect(MigrationPhase(gate: "cutover") == nil)
        for phase in MigrationPhase.gateable { #expect(MigrationPhase(gate: phase.gateName) == phase) }
    }

    @Test func aggregateChecksParseAndRejectBadFields() {
        #expect(AggregateCheck("orders.amount")?.description == "orders.amount")
        #expect(AggregateCheck("orders.totalAmount_2") != nil)
        #expect(AggregateCheck("orders.amount.cents") == nil)
        #expect(AggregateCheck("orders.$x") == nil)
        #expect(AggregateCheck("Orders.amount") == nil)
        #expect(AggregateCheck("orders.") == nil)
        #expect(AggregateCheck("orders.a'b") == nil)
    }
}
