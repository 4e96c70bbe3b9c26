import Testing

@testable import ReshardCore

@Suite struct ThrottleTests {
    @Test func aHealthySystemCopiesFullChunksWithoutDelay() {
        var throttle = Throttle(maxChunk: 1_000)
        throttle.setBaseline(p99Micros: 2_000)
        let decision = throttle.decide(foregroundP99Micros: 2_500, backlog: 10)
        #expect(decision == Throttle.Decision(chunkRows: 1_000, delayMillis: 0, reason: nil, maxChunks: nil))
    }

    @Test func latencyOverTwiceTheBaselineHalvesThenPauses() {
        var throttle = Throttle(maxChunk: 400, minChunk: 100)
        throttle.setBaseline(p99Micros: 1_000)
        let halved = throttle.decide(foregroundP99Micros: 2_500, backlog: 0)
        #expect(halved.chunkRows == 200)
        // Slowed: one chunk per round, not several small ones side by side.
        #expect(halved.maxChunks == 1)
        #expect(throttle.decide(foregroundP99Micros: 2_500, backlog: 0).chunkRows == 100)
        let paused = throttle.decide(foregroundP99Micros: 2_500, backlog: 0)
        #expect(paused.chunkRows == 0)
        #expect(paused.maxChunks == 0)
        #expect(paused.delayMillis == 1_000)
        #expect(paused.reason?.hasPrefix("paused: foreground p99 2.5 ms") == true)
        #expect(throttle.cause == .foregroundLatency)
        // Healthy again: chunks grow back, one doubling per five healthy rounds.
        var sizes: [Int] = []
        for _ in 0..<10 { sizes.append(throttle.decide(foregroundP99Micros: 900, backlog: 0).chunkRows) }
        #expect(sizes == [100, 100, 100, 100, 200, 200, 200, 200, 200, 400])
        #expect(throttle.reason == nil)
        #expect(throttle.cause == nil, "the cause clears with the reason")
        #expect(throttle.decide(foregroundP99Micros: 900, backlog: 0).maxChunks == nil)
    }

    /// A slowed copy rests after each chunk, one chunk's time per halving: at 1/4 of the full
    /// chunk, a chunk that took 30 ms is followed by 60 ms of rest.
    @Test func aSlowedCopyRestsInProportionToHowMuchItIsSlowed() {
        var throttle = Throttle(maxChunk: 400, minChunk: 100)
        throttle.setBaseline(p99Micros: 1_000)
        #expect(throttle.decide(foregroundP99Micros: 900, backlog: 0, lastChunkMicros: 30_000).delayMillis == 0)
        #expect(throttle.decide(foregroundP99Micros: 2_500, backlog: 0, lastChunkMicros: 30_000).delayMillis == 30)
        let quarter = throttle.decide(foregroundP99Micros: 2_500, backlog: 0, lastChunkMicros: 30_000)
        #expect(quarter.chunkRows == 100)
        #expect(quarter.delayMillis == 60)
        // Healthy again but not yet back to full chunks: still resting, less as chunks grow.
        let recovering = (0..<5).map { _ in throttle.decide(foregroundP99Micros: 900, backlog: 0, lastChunkMicros: 8_000) }
        #expect(recovering.map(\.chunkRows) == [100, 100, 100, 100, 200])
        #expect(recovering.map(\.delayMillis) == [16, 16, 16, 16, 8])
        // Under a rate ceiling the longer of the two waits wins.
        var capped = Throttle(maxRowsPerSecond: 10_000, maxChunk: 400, minChunk: 100)
        capped.setBaseline(p99Micros: 1_000)
        #expect(capped.decide(foregroundP99Micros: 2_500, backlog: 0, lastChunkMicros: 100_000).delayMillis == 100)
        #expect(capped.decide(foregroundP99Micros: 900, backlog: 0, lastChunkMicros: 1_000, lastChunkRows: 200).delayMillis == 20)
    }

    /// Work that must not stop (cleanup) goes at the slowest pace instead of pausing.
    @Test func theMinimumPaceIsOneSmallChunkThenARest() {
        var throttle = Throttle(maxRowsPerSecond: 100, maxChunk: 400, minChunk: 100)
        #expect(
            throttle.minimumPace(lastChunkMicros: 10_000) == Throttle.Decision(chunkRows: 100, delayMillis: 20, reason: nil, maxChunks: 1))
        #expect(throttle.minimumPace(lastChunkMicros: nil).delayMillis == 0)
        // The rows/s ceiling paces copies only: cleanup runs full chunks side by side.
        #expect(
            throttle.decide(foregroundP99Micros: nil, backlog: 0, copying: false)
                == Throttle.Decision(chunkRows: 400, delayMillis: 0, reason: nil, maxChunks: nil))
        #expect(throttle.decide(foregroundP99Micros: nil, backlog: 0, lastChunkMicros: 0, lastChunkRows: 100).delayMillis == 1_000)
    }

    /// Where a copy pauses, cleanup goes on at the minimum pace, and recovers the same way.
    @Test func cleanupSlowsWhereACopyWouldPauseButNeverStops() {
        var throttle = Throttle(maxChunk: 400, minChunk: 100)
        throttle.setBaseline(p99Micros: 1_000)
        var chunks: [Int] = []
        for _ in 0..<4 {
            chunks.append(throttle.decide(foregroundP99Micros: 2_500, backlog: 0, lastChunkMicros: 10_000, copying: false).chunkRows)
        }
        #expect(chunks == [200, 100, 100, 100])
        let slowest = throttle.decide(foregroundP99Micros: 2_500, backlog: 0, lastChunkMicros: 10_000, copying: false)
        #expect(slowest == Throttle.Decision(chunkRows: 100, delayMillis: 20, reason: slowest.reason, maxChunks: 1))
        #expect(slowest.reason?.hasPrefix("slowest pace: foreground p99 2.5 ms") == true)
    }

    @Test func growingLagSlowsTheCopy() {
        var throttle = Throttle(maxChunk: 800)
        var chunk = 800
        for backlog in [10, 20, 30, 40] { chunk = throttle.decide(foregroundP99Micros: nil, backlog: backlog).chunkRows }
        #expect(chunk == 400)
        #expect(throttle.reason?.contains("lag is growing") == true)
        #expect(throttle.cause == .lagGrowing)
    }

    @Test func theRateCeilingSpacesChunks() {
        var throttle = Throttle(maxRowsPerSecond: 500, maxChunk: 1_000, parallelism: 4)
        let decision = throttle.decide(foregroundP99Micros: nil, backlog: 0)
        // A round is at most a second's budget, shared by the chunks side by side, and nothing
        // was copied yet to rest for.
        #expect(decision.chunkRows == 125)
        #expect(decision.delayMillis == 0)
        #expect(decision.maxChunks == nil)
        #expect(decision.reason == "rate limit 500 rows/s")
        #expect(throttle.cause == .rateLimit)
        // After a round of 500 rows the next starts a second later (the round in between runs within it).
        #expect(throttle.decide(foregroundP99Micros: nil, backlog: 0, lastChunkMicros: 200_000, lastChunkRows: 500).delayMillis == 1_000)
    }

    /// The ceiling paces the rows a round really copied: a move's range often holds fewer
    /// rows than a chunk, and resting a whole chunk's share after each held a 300 rows/s
    /// ceiling to 9 rows/s.
    @Test func theRateCeilingIsReachedWhenRangesHoldFewerRowsThanAChunk() {
        var throttle = Throttle(maxRowsPerSecond: 300, maxChunk: 1_000)
        var clockMillis: UInt64 = 0
        var copied = 0
        var last: (micros: UInt64, rows: Int)?
        // Rounds of 30 rows (small moves), each taking 5 ms, for ten simulated seconds.
        while clockMillis < 10_000 {
            let decision = throttle.decide(foregroundP99Micros: nil, backlog: 0, lastChunkMicros: last?.micros, lastChunkRows: last?.rows)
            clockMillis += decision.delayMillis + 5
            let rows = min(30, decision.chunkRows)
            copied += rows
            last = (5_000, rows)
        }
        let rate = Double(copied) / (Double(clockMillis) / 1_000)
        #expect(rate >= 0.9 * 300 && rate <= 1.05 * 300, "\(rate) rows/s")
    }
}

extension ThrottleTests {
    /// A pause that does not bring the p99 down shows the copy is not the cause: the slower
    /// foreground becomes the baseline and the copy resumes, judged against it from then on.
    @Test func aPauseThatDoesNotHelpReBaselines() {
        var throttle = Throttle(maxChunk: 100, minChunk: 100, maxPausedRounds: 3)
        throttle.setBaseline(p99Micros: 1_000)
        let chunks = (0..<3).map { _ in throttle.decide(foregroundP99Micros: 9_000, backlog: 0).chunkRows }
        #expect(chunks == [0, 0, 0])
        #expect(throttle.decide(foregroundP99Micros: 9_000, backlog: 0).chunkRows == 100)
        #expect(throttle.reason == "re-baselined at 9.0 ms: pausing the copy did not bring the foreground p99 down")
        #expect(throttle.baselineP99Micros == 9_000)
        #expect(throttle.decide(foregroundP99Micros: 9_500, backlog: 0).chunkRows == 100)
        // Against the new reference, the copy doubling the p99 still pauses it.
        #expect(throttle.decide(foregroundP99Micros: 19_000, backlog: 0).chunkRows == 0)
    }

    @Test func growingLagNeverStallsTheMigrationForever() {
        var throttle = Throttle(latencyFactor: nil, maxChunk: 100, minChunk: 100, maxPausedRounds: 2)
        let chunks = (0..<10).map { throttle.decide(foregroundP99Micros: nil, backlog: 10 * ($0 + 1)).chunkRows }
        #expect(chunks == [100, 100, 100, 0, 0, 100, 0, 0, 100, 0])
        #expect(throttle.reason?.hasPrefix("paused: catch-up lag is growing") == true)
    }

    @Test func theLatencySignalCanBeTurnedOff() {
        var throttle = Throttle(latencyFactor: nil, maxChunk: 100)
        throttle.setBaseline(p99Micros: 1_000)
        #expect(throttle.decide(foregroundP99Micros: 50_000, backlog: 0).chunkRows == 100)
    }
}
