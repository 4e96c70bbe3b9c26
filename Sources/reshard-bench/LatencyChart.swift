import Foundation
import ReshardClient

/// Latency over time as an SVG: one panel per run (throttle off, on), p50 and p99 of each
/// 250 ms of requests, the migration's phases as shaded bands.
enum LatencyChart {
    static func svg(_ report: LatencyReport) -> String {
        LatencySVG.document(
            title: "Reshard: client latency while adding s5 (\(report.backend), \(report.rows) rows, \(report.rate) req/s)",
            panels: report.runs.map { run in
                (
                    title: "throttle \(run.throttled ? "on (latency factor 1.2)" : "off")",
                    points: run.timeline.map { LatencySVG.Point(second: $0.second, p50Millis: $0.p50Millis, p99Millis: $0.p99Millis) },
                    bands: run.bands.map { LatencySVG.Band(phase: $0.phase, fromSecond: $0.fromSecond, toSecond: $0.toSecond) }
                )
            })
    }
}
