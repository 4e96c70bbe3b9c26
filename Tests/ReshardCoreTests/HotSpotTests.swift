import Testing

@testable import ReshardCore

/// The hot-spot planner's judgement: sustained heat only, one key reported instead of split,
/// a cut where the load balances, and no move back.
@Suite struct HotSpotTests {
    let quarter = UInt64(1) << 62

    /// s1…s4, a quarter of the hash space each.
    func quarters() throws -> ShardMap {
        let shards = ["s1", "s2", "s3", "s4"].compactMap(ShardID.init)
        return try ShardMap(
            generation: 1,
            assignments: shards.enumerated().map { index, shard in
                RangeAssignment(
                    range: HashRange(start: UInt64(index) * quarter, last: UInt64(index) * quarter + (quarter - 1)), shard: shard)
            })
    }

    /// `count` windows, each with `base` requests in every bucket and `extra` more in each of
    /// `hot` buckets.
    func windows(_ count: Int, base: UInt64 = 10, extra: UInt64 = 0, hot: Range<Int> = 0..<0) -> [LoadWindows.Window] {
        (0..<count).map { epoch in
            var buckets: [UInt16: LoadCounts] = [:]
            for bucket in 0..<LoadWindows.bucketCount {
                let reads = base + (hot.contains(bucket) ? extra : 0)
                if reads > 0 { buckets[UInt16(bucket)] = LoadCounts(reads: reads) }
            }
            return LoadWindows.Window(epoch: UInt64(epoch), buckets: buckets)
        }
    }

    func topKeys(_ counts: [(String, UInt64)]) throws -> TopKeys {
        var top = try #require(TopKeys(capacity: 16))
        for (key, count) in counts { top.record(key, weight: count) }
        return top
    }

    let s1 = ShardID("s1")!
    let s4 = ShardID("s4")!

    @Test func tooFewWindowsAreNotJudged() throws {
        let report = HotSpotReport(map: try quarters(), windows: windows(3, extra: 100, hot: 0..<512), topKeys: [:], rules: HotSpotRules())
        #expect(report.finding == .notEnoughData(windows: 3, needed: 10))
        #expect(report.maxOverMean > 1.5, "the figures are shown all the same")
        let none = HotSpotReport(map: try quarters(), windows: [], topKeys: [:], rules: HotSpotRules())
        #expect(none.finding == .notEnoughData(windows: 0, needed: 10))
    }

    @Test func anEvenLoadIsBalanced() throws {
        let report = HotSpotReport(map: try quarters(), windows: windows(10), topKeys: [:], rules: HotSpotRules())
        #expect(report.finding == .balanced)
        #expect(report.maxOverMean == 1)
        #expect(report.load.values.allSatisfy { $0 == 10 * 1_024 * 10 })
        let idle = HotSpotReport(map: try quarters(), windows: windows(10, base: 0), topKeys: [:], rules: HotSpotRules())
        #expect(idle.finding == .balanced)
    }

    /// Hot in the last 4 of 10 windows only: a burst so far, not yet a hot spot.
    @Test func aBurstIsWarmingNotHot() throws {
        let report = HotSpotReport(
            map: try quarters(), windows: windows(6) + windows(4, extra: 100, hot: 0..<512), topKeys: [:], rules: HotSpotRules())
        #expect(report.finding == .warming(s1, hotWindows: 4))
    }

    /// One key holds over a quarter of the hot shard's samples: reported, never split.
    @Test func aShardHotBecauseOfOneKeyIsReportedNotSplit() throws {
        let keys = try topKeys([("celebrity", 300), ("a", 100), ("b", 100), ("c", 100)])
        let report = HotSpotReport(
            map: try quarters(), windows: windows(10, extra: 10_000, hot: 0..<4), topKeys: [s1: keys], rules: HotSpotRules())
        #expect(report.finding == .hotKey(s1, key: "celebrity", share: 0.5))
        let spread = try topKeys((0..<16).map { ("k\($0)", 10) })
        let split = HotSpotReport(
            map: try quarters(), windows: windows(10, extra: 100, hot: 0..<512), topKeys: [s1: spread], rules: HotSpotRules())
        if case .move = split.finding {} else { Issue.record("a heat spread over keys is split: \(split.finding)") }
    }

    /// Heat over half of s1's quarter: the move takes the front of that range, just enough to
    /// meet the coolest shard halfway; the map after it shows the predicted balance, and the
    /// same load on that map proposes no move back.
    @Test func aSustainedHotRangeIsCutWhereTheLoadBalancesAndNotMovedBack() throws {
        let map = try quarters()
        let load = windows(10, extra: 30, hot: 0..<512)
        let report = HotSpotReport(map: map, windows: load, topKeys: [:], rules: HotSpotRules())
        // Per window: s1 10,240 + 15,360 = 25,600, the others 10,240; mean 14,080. Half the
        // difference to s4 (equal loads: the last id is the coolest) is 7,680 = 192 hot buckets.
        let width = UInt64(1) << 52
        #expect(report.finding == .move(range: HashRange(start: 0, last: 192 * width - 1), from: s1, to: s4))
        #expect(abs(report.maxOverMean - 25_600.0 / 14_080) < 1e-9)
        #expect(report.ranked == ["s1", "s2", "s3", "s4"].compactMap(ShardID.init), "busiest first, equal loads by id")
        let predicted = try #require(report.predictedMaxOverMean)
        #expect(abs(predicted - 17_920.0 / 14_080) < 1e-9)

        guard case .move(let range, _, let target) = report.finding else { return }
        let moved = try map.painting([RangeAssignment(range: range, shard: target)], generation: 2)
        let after = HotSpotReport(map: moved, windows: load, topKeys: [:], rules: HotSpotRules())
        #expect(abs(after.maxOverMean - predicted) < 1e-9)
        if case .move(_, let from, let to) = after.finding {
            #expect(!(from == s4 && to == s1), "moved back")
        }
        // Run to a standstill: each proposal applied in turn ends balanced or with no move
        // worth making, never a cycle, and the busiest shard ends within 1.10 of the mean.
        var current = moved
        var seen: Set<ShardMap> = [map, moved.withGeneration(1)]
        for generation in UInt64(3)..<40 {
            let next = HotSpotReport(map: current, windows: load, topKeys: [:], rules: HotSpotRules())
            guard case .move(let range, _, let target) = next.finding else {
                #expect(next.maxOverMean <= 1.10, "\(next.finding) at \(next.maxOverMean)")
                return
            }
            current = try current.painting([RangeAssignment(range: range, shard: target)], generation: generation)
            #expect(seen.insert(current.withGeneration(1)).inserted, "a map came back: the moves cycle")
        }
        Issue.record("no standstill after 37 moves")
    }

    /// A move that gains less than the hysteresis margin is not proposed.
    @Test func aGainBelowTheMarginIsNoMove() throws {
        let report = HotSpotReport(
            map: try quarters(), windows: windows(10, extra: 30, hot: 0..<512), topKeys: [:], rules: HotSpotRules(minimumGain: 0.6))
        #expect(report.finding == .noWorthwhileMove(s1))
        let single = try ShardMap(generation: 1, assignments: [RangeAssignment(range: .full, shard: s1)])
        let alone = HotSpotReport(map: single, windows: windows(10), topKeys: [:], rules: HotSpotRules())
        #expect(alone.finding == .balanced && alone.maxOverMean == 1)
    }

    /// Bytes and time are signals too, each judged on its own.
    @Test func theSignalChoosesWhatIsBalanced() throws {
        var windows = windows(10)
        for index in windows.indices {
            // s2's first bucket carries large payloads; requests stay even.
            windows[index].buckets[1_024] = LoadCounts(reads: 10, bytes: 1_000_000)
        }
        let byRequests = HotSpotReport(map: try quarters(), windows: windows, topKeys: [:], rules: HotSpotRules(signal: .requests))
        #expect(byRequests.finding == .balanced)
        let byBytes = HotSpotReport(map: try quarters(), windows: windows, topKeys: [:], rules: HotSpotRules(signal: .bytes))
        if case .move(let range, let from, _) = byBytes.finding {
            #expect(from == ShardID("s2") && range.contains(UInt64(1_024) << 52))
        } else {
            Issue.record("bytes: \(byBytes.finding)")
        }
    }
}
