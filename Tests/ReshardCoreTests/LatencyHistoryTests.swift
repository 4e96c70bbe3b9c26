import Testing

@testable import ReshardCore

@Suite struct LatencyHistoryTests {
    func shard(_ name: String) -> ShardID { ShardID(name)! }

    /// Every value lands in a bucket whose top is at or above it and at most 12.5 % above it;
    /// buckets never go backwards.
    @Test func bucketsAreOrderedAndTight() {
        var values: [UInt64] = Array(0...5_000)
        var value: UInt64 = 5_001
        while value < (1 << 40) {
            values.append(contentsOf: [value - 1, value, value + 1])
            value = value * 9 / 8 + 7
        }
        var previous = -1
        for value in values.sorted() {
            let index = LatencyHistogram.bucket(value)
            #expect(index >= previous && index < LatencyHistogram.bucketCount)
            previous = index
            let top = LatencyHistogram.top(index)
            #expect(top >= value, "\(value) in bucket \(index) with top \(top)")
            #expect(Double(top) <= Double(value) * 1.125 + 1, "\(value) in bucket \(index) with top \(top)")
        }
        // Beyond the last octave everything shares the last bucket, and nothing traps.
        #expect(LatencyHistogram.bucket(.max) == LatencyHistogram.bucketCount - 1)
        #expect(LatencyHistogram.bucket(1 << 45) == LatencyHistogram.bucketCount - 1)
    }

    @Test func percentilesOfKnownDistributions() {
        var histogram = LatencyHistogram()
        #expect(histogram.percentile(0.99) == 0 && histogram.count == 0)
        for micros in 1...1_000 as ClosedRange<UInt64> { histogram.record(micros: micros) }
        #expect(histogram.count == 1_000 && histogram.maxMicros == 1_000)
        let p50 = histogram.percentile(0.5)
        let p99 = histogram.percentile(0.99)
        #expect(p50 >= 500 && Double(p50) <= 500 * 1.125, "\(p50)")
        #expect(p99 >= 990 && p99 <= 1_000, "\(p99) never above the largest value seen")
        #expect(histogram.percentile(1) == 1_000 && histogram.percentile(0) == 1)

        var other = LatencyHistogram()
        other.record(micros: .max)
        histogram.merge(other)
        #expect(histogram.count == 1_001 && histogram.maxMicros == .max)
        #expect(histogram.percentile(0.99) < 1_100, "one outlier among 1,001 does not move p99")
    }

    @Test func secondsRollAndGapsStayGaps() {
        var history = LatencyHistory(keepSeconds: 10, shardSeconds: 3)
        let s1 = shard("s1")
        let s2 = shard("s2")
        for micros in [100, 200, 300] as [UInt64] { history.record(micros: micros, shard: s1, nowMillis: 1_000_500) }
        history.record(micros: 5_000, shard: s2, nowMillis: 1_000_900)
        // The second under way is not complete yet.
        #expect(history.seconds(nowMillis: 1_000_999).isEmpty)
        let first = history.seconds(nowMillis: 1_001_000)
        #expect(first.map(\.second) == [1_000] && first[0].count == 4 && first[0].maxMicros == 5_000)
        // Nothing at 1,001 or 1,002; a request at 1,003.
        history.record(micros: 50, shard: s1, nowMillis: 1_003_100)
        let later = history.seconds(nowMillis: 1_004_000)
        #expect(later.map(\.second) == [1_000, 1_003])
        #expect(history.seconds(from: 1_001, nowMillis: 1_004_000).map(\.second) == [1_003])

        // A clock that steps back counts into the current second.
        history.record(micros: 70, shard: s1, nowMillis: 990_000)
        #expect(history.seconds(nowMillis: 1_004_000).last?.count == 2)
    }

    @Test func historyKeepsOnlyItsHour() {
        var history = LatencyHistory(keepSeconds: 100, shardSeconds: 2)
        for second in 0..<1_000 as Range<UInt64> {
            history.record(micros: second, shard: shard("s1"), nowMillis: second * 1_000)
        }
        let kept = history.seconds(nowMillis: 1_000_000)
        #expect(kept.count == 100 && kept.first?.second == 900 && kept.last?.second == 999)
    }

    @Test func shardRecentFiguresCoverCompleteSecondsOnly() {
        var history = LatencyHistory(shardSeconds: 2)
        let s1 = shard("s1")
        #expect(history.recent(s1, nowMillis: 5_000).p99Micros == nil)
        for _ in 0..<10 { history.record(micros: 100, shard: s1, nowMillis: 10_100) }
        for _ in 0..<30 { history.record(micros: 400, shard: s1, nowMillis: 11_100) }
        history.record(micros: 9_999, shard: s1, nowMillis: 12_100)
        let recent = history.recent(s1, nowMillis: 12_500)
        #expect(recent.requestsPerSecond == 20, "40 requests over the last two complete seconds")
        #expect(recent.p99Micros.map { $0 >= 400 && $0 < 450 } == true, "the second under way is left out")
        // Long after, nothing is recent.
        #expect(history.recent(s1, nowMillis: 60_000).p99Micros == nil)
        #expect(history.recent(shard("s9"), nowMillis: 12_500).requestsPerSecond == 0)
    }
}
