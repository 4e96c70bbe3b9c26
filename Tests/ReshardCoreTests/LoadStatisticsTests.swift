import Testing

@testable import ReshardCore

/// Per-bucket load windows and the Space-Saving top keys: exact figures, decay by windows,
/// merges that equal one router having seen everything, and the summary's guarantees.
@Suite struct LoadStatisticsTests {
    func windows(_ millis: UInt64 = 1_000, count: Int = 4) throws -> LoadWindows {
        try #require(LoadWindows(windowMillis: millis, windowCount: count))
    }

    @Test func theBucketsCutTheHashSpaceIntoEqualContiguousRanges() {
        var next: UInt64 = 0
        for bucket in 0..<UInt16(LoadWindows.bucketCount) {
            let range = LoadWindows.range(of: bucket)
            #expect(range.start == next)
            #expect(range.last - range.start == (UInt64(1) << 52) - 1)
            #expect(LoadWindows.bucket(of: range.start) == bucket && LoadWindows.bucket(of: range.last) == bucket)
            next = range.last &+ 1
        }
        #expect(next == 0, "the last bucket ends at 2^64-1")
        #expect(LoadWindows.bucket(of: .max) == 4_095)
    }

    @Test func invalidShapesAreRefused() {
        #expect(LoadWindows(windowMillis: 0, windowCount: 4) == nil)
        #expect(LoadWindows(windowMillis: 1_000, windowCount: 0) == nil)
        #expect(LoadWindows(windowMillis: 1_000, windowCount: -1) == nil)
        #expect(LoadWindows(windowMillis: 1_000, windowCount: LoadWindows.maxWindowCount + 1) == nil)
        #expect(LoadWindows(windowMillis: .max, windowCount: LoadWindows.maxWindowCount) != nil)
        #expect(TopKeys(capacity: 0) == nil && TopKeys(capacity: TopKeys.maxCapacity + 1) == nil)
    }

    /// Old windows fall off as time moves on; a sample for a window already gone is counted as
    /// dropped, one for a kept window that nobody wrote to yet takes its place in order.
    @Test func windowsAgeOutAndLateSamplesAreDroppedOrFiledInOrder() throws {
        var load = try windows(count: 3)
        let read = LoadCounts(reads: 1)
        for second in UInt64(0)..<10 { load.record(hash: 0, read, now: second * 1_000 + 500) }
        #expect(load.windows.map(\.epoch) == [7, 8, 9])
        load.record(hash: 0, read, now: 6_999)
        #expect(load.dropped == 1 && load.windows.map(\.epoch) == [7, 8, 9])
        load.record(hash: 0, LoadCounts(reads: 5), now: 12_000)
        #expect(load.windows.map(\.epoch) == [12])
        load.record(hash: 0, read, now: 10_000)
        #expect(load.windows.map(\.epoch) == [10, 12], "a late sample of a kept window goes in its place")
        load.record(hash: 0, LoadCounts(), now: 30_000)
        #expect(load.windows.map(\.epoch) == [10, 12], "an empty sample changes nothing")
        load.age(now: 14_000)
        #expect(load.windows.map(\.epoch) == [12])
        load.age(now: 100_000)
        #expect(load.windows.isEmpty)
    }

    /// The windows over at `now`, quiet ones included as empty, the current one left out.
    @Test func completeWindowsAreTheOnesOverWithQuietOnesEmpty() throws {
        var load = try windows(count: 4)
        #expect(load.completeWindows(now: 0).isEmpty)
        load.record(hash: 0, LoadCounts(writes: 2), now: 1_000)
        load.record(hash: 0, LoadCounts(writes: 3), now: 3_000)
        let complete = load.completeWindows(now: 3_500)
        #expect(complete.map(\.epoch) == [0, 1, 2])
        #expect(complete.map { $0.total.writes } == [0, 2, 0])
        #expect(load.completeWindows(now: 4_000).map { $0.total.writes } == [2, 0, 3])
        #expect(load.completeWindows(now: 1_000).map(\.epoch) == [0])
    }

    /// A range's load counts whole buckets exactly and a cut bucket by the share it covers;
    /// the loads of ranges that partition the space add up to the total.
    @Test func loadInARangeApportionsTheBucketsItCuts() throws {
        var load = try windows()
        let width = UInt64(1) << 52
        load.record(hash: 0, LoadCounts(reads: 100, bytes: 1_000), now: 0)
        load.record(hash: width, LoadCounts(reads: 40), now: 0)
        load.record(hash: .max, LoadCounts(writes: 8, micros: 80), now: 0)
        let window = try #require(load.windows.first)
        #expect(LoadWindows.load(in: .full, of: LoadWindows.bucketLoads([window], signal: .requests)) == 148)
        #expect(LoadWindows.load(in: .full, of: LoadWindows.bucketLoads([window], signal: .bytes)) == 1_000)
        #expect(LoadWindows.load(in: .full, of: LoadWindows.bucketLoads([window], signal: .time)) == 80)
        #expect(LoadWindows.load(in: HashRange(start: 0, last: width - 1), of: LoadWindows.bucketLoads([window], signal: .requests)) == 100)
        #expect(
            LoadWindows.load(in: HashRange(start: 0, last: width / 2 - 1), of: LoadWindows.bucketLoads([window], signal: .requests)) == 50)
        #expect(
            LoadWindows.load(
                in: HashRange(start: width / 4, last: width + width / 2 - 1), of: LoadWindows.bucketLoads([window], signal: .requests))
                == 95)
        #expect(
            LoadWindows.load(in: HashRange(start: .max, last: .max), of: LoadWindows.bucketLoads([window], signal: .requests)) == 8
                / Double(width))

        #expect(LoadWindows.share(of: 1, coveredBy: HashRange(start: 0, last: width - 1)) == 0, "apart")
        #expect(LoadWindows.share(of: 0, coveredBy: HashRange(start: width - 1, last: .max)) == 1 / Double(width))

        var random = SeededRandom(seed: 7)
        var cuts = (0..<50).map { _ in random.next() }.sorted()
        cuts.removeAll { $0 == 0 }
        var start: UInt64 = 0
        var sum = 0.0
        for cut in cuts where cut > start {
            sum += LoadWindows.load(in: HashRange(start: start, last: cut - 1), of: LoadWindows.bucketLoads([window], signal: .requests))
            start = cut
        }
        sum += LoadWindows.load(in: HashRange(start: start, last: .max), of: LoadWindows.bucketLoads([window], signal: .requests))
        #expect(abs(sum - 148) < 1e-9)
    }

    /// Routers that each saw part of the traffic, merged in any order, give what one router
    /// that saw it all would have; a different window length is refused.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func mergedWindowsEqualOneRouterThatSawEverything(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        var all = try windows(count: 5)
        var routers = [try windows(count: 5), try windows(count: 5), try windows(count: 5)]
        var now: UInt64 = 0
        for _ in 0..<2_000 {
            now += random.next() % 20
            let counts = LoadCounts(
                reads: random.next() % 3, writes: random.next() % 2, bytes: random.next() % 500, micros: random.next() % 900)
            let hash = random.next()
            all.record(hash: hash, counts, now: now)
            routers[Int(random.next() % 3)].record(hash: hash, counts, now: now)
        }
        var forward = try windows(count: 5)
        for router in routers {
            let accepted = forward.merge(router)
            #expect(accepted)
        }
        var backward = try windows(count: 5)
        for router in routers.reversed() { backward.merge(router) }
        #expect(all.windows.count == 5 && all.windows.dropLast().allSatisfy { $0.buckets.count > 10 })
        #expect(forward.windows == all.windows && backward.windows == all.windows)
        var other = try windows(2_000, count: 5)
        let accepted = other.merge(all)
        #expect(!accepted && other.windows.isEmpty)
    }

    @Test func countersSaturateInsteadOfTrapping() throws {
        var counts = LoadCounts(reads: .max - 1, writes: .max, bytes: 1, micros: .max)
        counts.add(LoadCounts(reads: 5, writes: 1, bytes: 2, micros: .max))
        #expect(counts == LoadCounts(reads: .max, writes: .max, bytes: 3, micros: .max))
        #expect(counts.requests == .max)
        var top = try #require(TopKeys(capacity: 2))
        top.record("a", weight: .max)
        top.record("a", weight: .max)
        top.record("b", weight: 1)
        top.record("c", weight: .max)
        #expect(top.total == .max)
        #expect(top.top(2).map(\.key) == ["a", "c"])
    }

    /// Fewer distinct keys than counters: every count is exact.
    @Test func aSummaryWithRoomCountsExactly() throws {
        var top = try #require(TopKeys(capacity: 8))
        for (key, count) in [("x", 5), ("y", 3), ("z", 5), ("", 1), ("\u{0}", 2)] {
            for _ in 0..<count { top.record(key) }
        }
        top.record("y", weight: 0)
        #expect(top.total == 16 && top.floor == 0)
        #expect(top.top(10).map(\.key) == ["x", "z", "y", "\u{0}", ""], "largest first, equal counts by key")
        #expect(top.top(10).allSatisfy { $0.error == 0 })
        #expect(top.top(-1).isEmpty)
        #expect(top.guaranteedShare(of: "x") == 5.0 / 16 && top.guaranteedShare(of: "nope") == 0)
    }

    /// A skewed stream over many keys: the heavy keys are kept, every kept key's bounds hold
    /// its true count, and merging routers' summaries keeps both.
    @Test(arguments: [UInt64(11), 12, 13])
    func theSummaryKeepsEveryHeavyKeyWithinItsBounds(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        var truth: [String: UInt64] = [:]
        var whole = try #require(TopKeys(capacity: 32))
        var parts = [try #require(TopKeys(capacity: 32)), try #require(TopKeys(capacity: 32))]
        for _ in 0..<20_000 {
            // 40 % on 3 hot keys, 20 % on 20 warm ones, the rest spread over 5,000.
            let draw = random.next() % 100
            let key =
                switch draw {
                case ..<40: "hot\(draw % 3)"
                case ..<60: "warm\(random.next() % 20)"
                default: "k\(random.next() % 5_000)"
                }
            truth[key, default: 0] += 1
            whole.record(key)
            parts[Int(random.next() % 2)].record(key)
        }
        var merged = parts[0]
        merged.merge(parts[1])
        var mergedBack = parts[1]
        mergedBack.merge(parts[0])
        #expect(merged.top(32) == mergedBack.top(32), "the order of routers does not matter")
        // One summary keeps every key above total/capacity; a merge of two, every key above
        // twice that (each side may overcount a key by its floor, at most its total/capacity).
        for (summary, heavy) in [(whole, UInt64(20_000 / 32)), (merged, UInt64(2 * 20_000 / 32))] {
            #expect(summary.total == 20_000)
            #expect(truth.values.contains { $0 > heavy }, "the stream has heavy keys to keep")
            let kept = Dictionary(uniqueKeysWithValues: summary.top(32).map { ($0.key, $0) })
            for (key, count) in truth where count > heavy {
                #expect(kept[key] != nil, "heavy key \(key) (\(count)) was lost")
            }
            for (key, entry) in kept {
                let count = truth[key, default: 0]
                #expect(entry.count >= count && entry.count - entry.error <= count, "\(key): \(entry) vs \(count)")
            }
        }
    }

    /// A new key takes the smallest counter, the greatest key among equals; the same stream
    /// always gives the same summary.
    @Test func evictionIsDeterministic() throws {
        var top = try #require(TopKeys(capacity: 2))
        top.record("b")
        top.record("a")
        top.record("c")
        #expect(top.top(2).map(\.key) == ["c", "a"])
        #expect(top.top(2).first == TopKeys.Entry(key: "c", count: 2, error: 1))
        #expect(top.floor == 1)
        var again = try #require(TopKeys(capacity: 2))
        for key in ["b", "a", "c"] { again.record(key) }
        #expect(again == top)
    }

    /// A summary sent as its parts comes back equal; parts that break its rules are refused.
    @Test func aSummaryRoundTripsThroughItsParts() throws {
        var top = try #require(TopKeys(capacity: 3))
        for key in ["a", "b", "a", "c", "d", "a", "e"] { top.record(key) }
        let rebuilt = try #require(TopKeys(capacity: top.capacity, total: top.total, entries: top.entries))
        #expect(rebuilt == top)
        let entry = TopKeys.Entry(key: "k", count: 2, error: 0)
        #expect(TopKeys(capacity: 0, total: 2, entries: []) == nil)
        #expect(TopKeys(capacity: TopKeys.maxCapacity + 1, total: 2, entries: []) == nil)
        #expect(TopKeys(capacity: 1, total: 4, entries: [entry, TopKeys.Entry(key: "j", count: 2, error: 0)]) == nil)
        #expect(TopKeys(capacity: 2, total: 4, entries: [entry, entry]) == nil)
        #expect(TopKeys(capacity: 2, total: 4, entries: [TopKeys.Entry(key: "k", count: 1, error: 2)]) == nil)
        #expect(TopKeys(capacity: 2, total: 1, entries: [entry]) == nil)
        #expect(TopKeys(capacity: 2, total: .max, entries: [TopKeys.Entry(key: "k", count: .max, error: .max)]) != nil)
    }

    /// Another router's buckets add back by bucket and window; a bucket past the hash space (a
    /// damaged report) is counted as dropped, never used as a range.
    @Test func recordedBucketsAddBackAndStrayOnesAreDropped() throws {
        var load = try windows(count: 3)
        load.record(bucket: 7, epoch: 5, LoadCounts(reads: 2))
        load.record(bucket: 7, epoch: 5, LoadCounts(writes: 1))
        load.record(bucket: UInt16(LoadWindows.bucketCount), epoch: 5, LoadCounts(reads: 9))
        load.record(bucket: .max, epoch: 5, LoadCounts(reads: 1))
        #expect(load.windows.count == 1 && load.windows[0].buckets == [7: LoadCounts(reads: 2, writes: 1)])
        #expect(load.dropped == 10)
    }
}
