import Foundation

/// One backend's foreground latency figures.
struct LatencyReport: BackendReport {
    /// The latency of the requests of one stage.
    struct Stage: Codable, Sendable {
        let stage: String
        let requests: Int
        let errors: Int
        let p50Millis: Double
        let p99Millis: Double
        let maxMillis: Double
    }

    /// One point of the chart: the requests that started in one bucket of time.
    struct Point: Codable, Sendable {
        let second: Double
        let p50Millis: Double
        let p99Millis: Double
    }

    /// A phase on the chart, seconds since the load started.
    struct Band: Codable, Sendable {
        let phase: String
        let fromSecond: Double
        let toSecond: Double
    }

    /// One migration under load.
    struct Run: Codable, Sendable {
        let throttled: Bool
        let stages: [Stage]
        /// The requests of the copy and the catch-up together ("while rows moved"): one
        /// distribution, so that a stage of a handful of requests does not set the figure.
        let during: Stage?
        let timeline: [Point]
        let bands: [Band]
        let throttleReasons: [String]
        let peakMemoryBytes: Int

        static let stageNames = ["before", "preparing", "copy", "catch-up", "verifying", "cutover", "baking", "cleaning_up", "after"]
        static let stageOfPhase = ["copying": "copy", "catching_up": "catch-up", "cutting_over": "cutover"]
        static let bucketMillis: UInt64 = 250

        /// Files each sample under a stage: by its start, except that a request in flight during
        /// the cutover counts as the cutover's (the hold is what that stage is about).
        init(
            throttled: Bool, samples: [BenchLoad.Sample], origin: UInt64, begin: UInt64, end: UInt64, spans: [BenchMigration.Span],
            throttleReasons: [String], peakMemoryBytes: Int
        ) {
            self.throttled = throttled
            self.throttleReasons = throttleReasons
            self.peakMemoryBytes = peakMemoryBytes
            func span(_ phase: String) -> [BenchMigration.Span] { spans.filter { $0.phase == phase } }
            let cutover = span("cutting_over")
            var byStage: [String: [BenchLoad.Sample]] = [:]
            var buckets: [Int: [Double]] = [:]
            for sample in samples {
                let startMillis = origin + sample.startMicros / 1_000
                let endMillis = startMillis + UInt64(sample.latencyMicros) / 1_000
                let stage: String
                if cutover.contains(where: { startMillis <= $0.endMillis && endMillis >= $0.startMillis }) {
                    stage = "cutover"
                } else if startMillis < begin {
                    stage = "before"
                } else if startMillis >= end {
                    stage = "after"
                } else if let phase = spans.last(where: { $0.startMillis <= startMillis })?.phase {
                    stage = Self.stageOfPhase[phase] ?? phase
                } else {
                    stage = "before"
                }
                byStage[stage, default: []].append(sample)
                buckets[Int(sample.startMicros / 1_000 / Self.bucketMillis), default: []].append(Double(sample.latencyMicros) / 1_000)
            }
            func stage(_ name: String, _ samples: [BenchLoad.Sample]) -> Stage {
                let sorted = samples.map { Double($0.latencyMicros) / 1_000 }.sorted()
                return Stage(
                    stage: name, requests: samples.count, errors: samples.filter { !$0.ok }.count, p50Millis: percentile(sorted, 50),
                    p99Millis: percentile(sorted, 99), maxMillis: sorted.last ?? 0)
            }
            stages = (Self.stageNames + byStage.keys.filter { !Self.stageNames.contains($0) }.sorted()).compactMap { name in
                byStage[name].map { stage(name, $0) }
            }
            let moving = (byStage["copy"] ?? []) + (byStage["catch-up"] ?? [])
            during = moving.isEmpty ? nil : stage("copy + catch-up", moving)
            timeline = buckets.keys.sorted().compactMap { bucket in
                guard let values = buckets[bucket]?.sorted() else { return nil }
                return Point(
                    second: Double(bucket) * Double(Self.bucketMillis) / 1_000, p50Millis: percentile(values, 50),
                    p99Millis: percentile(values, 99))
            }
            bands = spans.map {
                Band(
                    phase: $0.phase, fromSecond: Double(Int64($0.startMillis) - Int64(origin)) / 1_000,
                    toSecond: Double(Int64($0.endMillis) - Int64(origin)) / 1_000)
            }
        }

        func stage(_ name: String) -> Stage? { stages.first { $0.stage == name } }

        /// p99 of the requests that ran while rows moved (copy and catch-up) over p99 before.
        var duringOverBefore: Double? {
            guard let before = stage("before"), before.p99Millis > 0, let during else { return nil }
            return during.p99Millis / before.p99Millis
        }
    }

    let backend: String
    let rows: Int
    let rate: Int
    let runs: [Run]

    var checks: [TargetCheck] {
        guard let run = runs.first(where: \.throttled), let ratio = run.duringOverBefore, let before = run.stage("before"),
            let during = run.during
        else {
            return []
        }
        return [
            .atMost(
                "foreground p99 during migration vs before, throttling on", backend, ratio, 1.2,
                detail: String(
                    format: "%.2f vs %.2f ms (%d requests during copy and catch-up)", during.p99Millis, before.p99Millis, during.requests))
        ]
    }

    var markdown: String {
        var lines = [
            "**\(backend)**: add s5 to 4 shards holding \(grouped(rows)) rows, clients at \(rate) req/s (70 % GET, 30 % PUT)",
            "",
            "| throttle | stage | requests | errors | p50 ms | p99 ms | max ms |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for run in runs {
            for stage in run.stages + [run.during].compactMap({ $0 }) {
                lines.append(
                    String(
                        format: "| %@ | %@ | %d | %d | %.2f | %.2f | %.1f |", run.throttled ? "on" : "off", stage.stage as NSString,
                        stage.requests, stage.errors, stage.p50Millis, stage.p99Millis, stage.maxMillis))
            }
        }
        for run in runs {
            let ratio = run.duringOverBefore.map { String(format: "%.2f", $0) } ?? "n/a"
            let reasons = run.throttleReasons.isEmpty ? "never slowed" : run.throttleReasons.joined(separator: "; ")
            lines.append("")
            lines.append("throttle \(run.throttled ? "on" : "off"): p99 during/before \(ratio); throttle: \(reasons)")
        }
        return lines.joined(separator: "\n")
    }
}
