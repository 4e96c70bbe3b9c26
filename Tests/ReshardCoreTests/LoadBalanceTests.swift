import Foundation
import Testing

@testable import ReshardCore

/// The load-aware planner: a mix of signals made one histogram, points the row rebalancer evens
/// out, cuts on bucket boundaries, and a Zipf-hot shard spread to within 1.10 of the mean.
@Suite struct LoadBalanceTests {
    let shards = ["s1", "s2", "s3", "s4"].compactMap(ShardID.init)
    let bucketWidth = UInt64(1) << UInt64(64 - LoadWindows.bucketBits)

    /// A ring of 4 shards, as a cluster starts.
    func ring() throws -> ShardMap { try RingPlacement().shardMap(for: shards, generation: 1) }

    /// Zipf (s = 1.1) over `keys` keys, the hottest half of the ranks in buckets `hot` owns: one
    /// shard takes most of the load, as in `reshard-bench hotspot`.
    func zipf(map: ShardMap, hot: ShardID, keys: Int = 2_000) -> [UInt16: Double] {
        var owned: [UInt16] = []
        var others: [UInt16] = []
        for bucket in 0..<UInt16(LoadWindows.bucketCount) {
            let range = LoadWindows.range(of: bucket)
            if map.owner(of: range.start) == hot && map.owner(of: range.last) == hot { owned.append(bucket) } else { others.append(bucket) }
        }
        var histogram: [UInt16: Double] = [:]
        for rank in 1...keys {
            // A multiplicative walk spreads ranks over buckets without clustering them.
            let pool = rank <= keys / 2 ? owned : others
            let bucket = pool[(rank * 7_919) % pool.count]
            histogram[bucket, default: 0] += 1 / pow(Double(rank), 1.1)
        }
        return histogram
    }

    @Test func aMixWeighsEachPartAsAShareOfItsOwnTotal() {
        let loads: [LoadSignal: [UInt16: Double]] = [.requests: [1: 300, 2: 100], .bytes: [:]]
        let rows = [LoadWindows.range(of: 2).start, LoadWindows.range(of: 3).start]
        let mixed = LoadMix(rows: 1, requests: 1, bytes: 5).histogram(loads: loads, rowHashes: rows)
        #expect(mixed == [1: 0.75, 2: 0.75, 3: 0.5], "bytes counted nothing, so they add nothing")
        #expect(LoadMix(.requests).histogram(loads: loads, rowHashes: rows) == [1: 0.75, 2: 0.25])
        #expect(LoadMix().violation != nil && LoadMix(rows: -1, requests: 1).violation != nil)
        #expect(LoadMix(requests: .infinity).violation != nil && LoadMix(requests: .nan).violation != nil)
        #expect(LoadMix(requests: LoadMix.maxWeight + 1).violation != nil && LoadMix(requests: LoadMix.maxWeight).violation == nil)
    }

    /// A plan's pieces carry the load measured: cut on buckets, a bucket a range cuts
    /// apportioned, and nothing left out.
    @Test func piecesAddUpToTheHistogram() throws {
        let map = try ring()
        let histogram: [UInt16: Double] = [0: 4, 17: 2, 4_095: 1, 300: 0]
        let pieces = LoadBalancer.loadedPieces(map, histogram)
        #expect(abs(pieces.reduce(0) { $0 + $1.load } - 7) < 1e-9)
        for piece in pieces {
            #expect(map.owner(of: piece.range.start) == piece.shard && map.owner(of: piece.range.last) == piece.shard)
            #expect(LoadWindows.bucket(of: piece.range.start) == LoadWindows.bucket(of: piece.range.last))
        }
    }

    /// Most of the load on one shard; the plan's map brings the busiest shard to within 1.10 of
    /// the mean, cutting only on bucket boundaries or where the old map already cut, and moves
    /// less than a third of the hash space.
    @Test(arguments: [0, 1, 2, 3]) func aZipfHotShardIsSpreadToWithinTenPercent(hotIndex: Int) throws {
        let map = try ring()
        let histogram = zipf(map: map, hot: shards[hotIndex])
        #expect(LoadMix.maxOverMean(histogram, map: map) > 1.8, "one shard takes most of the load")
        let plan = try MigrationPlanner.plan(
            .rebalanceLoad(LoadMix(.requests)), current: map, registered: Set(shards), loadHistogram: histogram)
        #expect(plan.kind.name == "rebalance")
        let after = LoadMix.maxOverMean(histogram, map: plan.target)
        #expect(after <= 1.10, "busiest shard \(after)x the mean after the plan")
        #expect(plan.movedFraction < 1.0 / 3, "moved \(plan.movedFraction) of the space")
        // Run again on the map it made, it moves nothing back.
        #expect(throws: PlanError.alreadyBalanced(after, hotFactor: 1.1)) {
            try MigrationPlanner.plan(
                .rebalanceLoad(LoadMix(.requests)), current: plan.target, registered: Set(shards), loadHistogram: histogram)
        }
        let oldCuts = Set(map.assignments.map(\.range.start))
        for move in plan.moves {
            #expect(oldCuts.contains(move.range.start) || move.range.start % bucketWidth == 0, "\(move)")
            #expect(move.range.last == .max || oldCuts.contains(move.range.last + 1) || (move.range.last + 1) % bucketWidth == 0, "\(move)")
        }
    }

    @Test func aLoadRebalanceWithoutLoadIsRefused() throws {
        #expect(throws: PlanError.noLoad) {
            try MigrationPlanner.plan(.rebalanceLoad(LoadMix(.requests)), current: try ring(), registered: Set(shards))
        }
    }

    @Test func aHotRangeSplitMovesOnlyWhatItsShardOwns() throws {
        let map = try ring()
        let s1 = shards[0]
        let owned = try #require(map.ranges(of: s1).first)
        let piece = HashRange(start: owned.start, last: owned.start + (owned.last - owned.start) / 2)
        let plan = try MigrationPlanner.plan(.splitHotRange(piece, from: s1, to: shards[1]), current: map, registered: Set(shards))
        #expect(plan.kind.name == "split_hot_range" && plan.moves == [Move(range: piece, source: s1, target: shards[1])])
        #expect(throws: PlanError.rangeNotOwned(piece, by: shards[2])) {
            try MigrationPlanner.plan(.splitHotRange(piece, from: shards[2], to: shards[1]), current: map, registered: Set(shards))
        }
        let ghost = try #require(ShardID("s9"))
        #expect(throws: PlanError.unknownShard(ghost)) {
            try MigrationPlanner.plan(.splitHotRange(piece, from: s1, to: ghost), current: map, registered: Set(shards))
        }
    }
}

/// Automatic action only on a sustained, splittable hot spot, with nothing running, after a cooldown.
@Suite struct AutoRebalancePolicyTests {
    let s1 = ShardID("s1")!
    let s2 = ShardID("s2")!

    @Test func onlyASustainedMoveStartsAndOnlyAfterTheCooldown() {
        let policy = AutoRebalancePolicy(cooldownMillis: 60_000)
        let move = HotSpotFinding.move(range: HashRange(start: 0, last: 99), from: s1, to: s2)
        #expect(policy.shouldStart(finding: move, migrationActive: false, lastEndedMillis: nil, now: 0))
        #expect(!policy.shouldStart(finding: move, migrationActive: true, lastEndedMillis: nil, now: 0))
        #expect(!policy.shouldStart(finding: move, migrationActive: false, lastEndedMillis: 100_000, now: 159_999))
        #expect(policy.shouldStart(finding: move, migrationActive: false, lastEndedMillis: 100_000, now: 160_000))
        #expect(!policy.shouldStart(finding: move, migrationActive: false, lastEndedMillis: 200_000, now: 100_000), "a clock behind waits")
        let others: [HotSpotFinding] = [
            .notEnoughData(windows: 3, needed: 10), .balanced, .warming(s1, hotWindows: 9), .hotKey(s1, key: "t/k", share: 0.5),
            .noWorthwhileMove(s1),
        ]
        for finding in others {
            #expect(!policy.shouldStart(finding: finding, migrationActive: false, lastEndedMillis: nil, now: .max), "\(finding)")
        }
    }
}

/// One sentence per finding, shared by `GET /v1/load` and the load-aware refusals.
@Suite struct HotSpotAdviceTests {
    @Test func everyFindingHasItsNameAndAdvice() throws {
        let s1 = ShardID("s1")!
        let findings: [HotSpotFinding] = [
            .notEnoughData(windows: 3, needed: 10), .balanced, .warming(s1, hotWindows: 9), .hotKey(s1, key: "t/k", share: 0.5),
            .move(range: HashRange(start: 0, last: 99), from: s1, to: ShardID("s2")!), .noWorthwhileMove(s1),
        ]
        #expect(Set(findings.map(\.name)).count == findings.count)
        let rules = HotSpotRules()
        #expect(findings.allSatisfy { !$0.advice(rules: rules).isEmpty })
        let hot = HotSpotFinding.hotKey(s1, key: "t/k", share: 0.5).advice(rules: rules)
        #expect(hot.contains("t/k") && hot.contains("50 %") && hot.contains("salt the key"))
        #expect(findings[4].advice(rules: rules).contains("split-hot-range"))

        // Only a move is run; every other finding says why not, by a code of its own.
        #expect(try findings[4].splitKind(rules: rules) == .splitHotRange(HashRange(start: 0, last: 99), from: s1, to: ShardID("s2")!))
        let codes = findings.enumerated().filter { $0.offset != 4 }.map { _, finding -> String in
            do throws(PlanError) {
                _ = try finding.splitKind(rules: rules)
                return "planned"
            } catch {
                return error.code
            }
        }
        #expect(codes == ["not_enough_load_data", "no_hot_range", "no_hot_range", "hot_key", "no_hot_range"])
    }

    /// A load rebalance weighs the last 10 windows; one key that is the busiest shard's heat
    /// refuses it before anything is planned.
    @Test func weighingRefusesACelebrityKey() throws {
        let map = try RingPlacement().shardMap(for: ["s1", "s2"].compactMap(ShardID.init), generation: 1)
        let hot = map.owner(of: 0)
        let windows = (0..<12).map { epoch in
            LoadWindows.Window(epoch: UInt64(epoch), buckets: [0: LoadCounts(reads: 90), 2_048: LoadCounts(reads: 10)])
        }
        var keys = try #require(TopKeys(capacity: 8))
        keys.record("t/celebrity", weight: 600)
        keys.record("t/other", weight: 300)
        let weighed = try LoadMix(.requests).weigh(windows: windows, topKeys: [:], rowHashes: [], map: map)
        #expect(weighed.windows == 10)
        #expect(abs(weighed.histogram.values.reduce(0, +) - 1) < 1e-9)
        #expect(throws: PlanError.self) {
            try LoadMix(.requests).weigh(windows: windows, topKeys: [hot: keys], rowHashes: [], map: map)
        }
        #expect(try LoadMix(rows: 1).weigh(windows: windows, topKeys: [hot: keys], rowHashes: [0], map: map).histogram == [0: 1])
    }
}
