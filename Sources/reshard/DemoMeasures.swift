import Foundation
import Histogram

/// Latency in microseconds; the alias keeps the demo clear of Prometheus's own `Histogram`.
typealias LatencyHistogram = Histogram<UInt64>

/// Wall-clock milliseconds, the unit of the migration journal's phase log.
func wallMillis() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1_000) }

/// Keeps one entry per kind of throttle action (halving, pausing, re-baselining), with the
/// first reason given for it: what a report needs, without every round's figures.
func noteThrottleReason(_ reason: String, in reasons: inout [String]) {
    let kind = reason.split(separator: ":").first.map(String.init) ?? reason
    if !reasons.contains(where: { $0.hasPrefix(kind) }) { reasons.append(reason) }
}
