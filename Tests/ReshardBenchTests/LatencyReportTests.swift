import Testing

@testable import reshard_bench

/// How the latency benchmark files its samples: the figures are only as good as this.
@Suite struct LatencyReportTests {
    /// A migration that began 1 s after the load and ended at 5 s: copying 1–3 s, catching up
    /// 3–3.5 s, cutting over 3.5–3.6 s, cleaning up 3.6–5 s.
    let origin: UInt64 = 10_000
    var spans: [BenchMigration.Span] {
        [
            .init(phase: "copying", startMillis: 11_000, endMillis: 13_000),
            .init(phase: "catching_up", startMillis: 13_000, endMillis: 13_500),
            .init(phase: "cutting_over", startMillis: 13_500, endMillis: 13_600),
            .init(phase: "cleaning_up", startMillis: 13_600, endMillis: 15_000),
        ]
    }

    func sample(atMillis start: UInt64, latencyMillis: UInt32, status: UInt16 = 200) -> BenchLoad.Sample {
        BenchLoad.Sample(startMicros: start * 1_000, latencyMicros: latencyMillis * 1_000, isWrite: true, status: status)
    }

    func run(_ samples: [BenchLoad.Sample]) -> LatencyReport.Run {
        LatencyReport.Run(
            throttled: true, samples: samples, origin: origin, begin: 11_000, end: 15_000, spans: spans, throttleReasons: [],
            peakMemoryBytes: 0)
    }

    @Test func samplesAreFiledByTheirStartAndTheCutoverTakesWhatWasInFlight() {
        let report = run([
            sample(atMillis: 500, latencyMillis: 1),  // before
            sample(atMillis: 1_500, latencyMillis: 2),  // copy
            sample(atMillis: 3_200, latencyMillis: 3),  // catch-up
            sample(atMillis: 3_490, latencyMillis: 20),  // started in catch-up, waited through the hold
            sample(atMillis: 3_550, latencyMillis: 4, status: 503),  // cutover, an error
            sample(atMillis: 4_000, latencyMillis: 5),  // cleaning up
            sample(atMillis: 5_100, latencyMillis: 1),  // after
        ])
        let counts = Dictionary(uniqueKeysWithValues: report.stages.map { ($0.stage, $0.requests) })
        #expect(counts == ["before": 1, "copy": 1, "catch-up": 1, "cutover": 2, "cleaning_up": 1, "after": 1])
        #expect(report.stages.map(\.stage) == ["before", "copy", "catch-up", "cutover", "cleaning_up", "after"])
        #expect(report.stage("cutover")?.errors == 1)
        #expect(report.stage("cutover")?.maxMillis == 20)
    }

    /// "During" is one distribution over the copy and the catch-up: a catch-up of a few requests
    /// must not set the figure with its slowest one.
    @Test func duringPoolsTheCopyAndTheCatchUp() throws {
        var samples = (0..<100).map { sample(atMillis: 500 + UInt64($0), latencyMillis: 2) }
        samples += (0..<200).map { sample(atMillis: 1_100 + UInt64($0 * 5), latencyMillis: 3) }
        samples += [sample(atMillis: 3_100, latencyMillis: 40)]
        let report = run(samples)
        #expect(report.stage("catch-up")?.p99Millis == 40)
        let during = try #require(report.during)
        #expect(during.requests == 201)
        #expect(during.p99Millis == 3)
        #expect(report.duringOverBefore == 1.5)
    }
}
