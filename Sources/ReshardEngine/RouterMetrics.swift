import Metrics
import ReshardCore
import Synchronization

/// Per-shard operation counters and latencies, created once per shard so the hot path only
/// increments existing handles.
struct ShardMetrics: Sendable {
    enum Operation: String, CaseIterable, Sendable {
        case get, put, delete, list
    }

    private let counters: [Operation: Counter]
    private let errors: [Operation: Counter]
    private let timers: [Operation: Metrics.Timer]
    let rows: Gauge

    init(shard: String, factory: any MetricsFactory) {
        var counters: [Operation: Counter] = [:]
        var errors: [Operation: Counter] = [:]
        var timers: [Operation: Metrics.Timer] = [:]
        for operation in Operation.allCases {
            let dimensions = [("shard", shard), ("op", operation.rawValue)]
            counters[operation] = Counter(label: "reshard_shard_requests_total", dimensions: dimensions, factory: factory)
            errors[operation] = Counter(label: "reshard_shard_errors_total", dimensions: dimensions, factory: factory)
            timers[operation] = Metrics.Timer(label: "reshard_shard_request_duration_seconds", dimensions: dimensions, factory: factory)
        }
        self.counters = counters
        self.errors = errors
        self.timers = timers
        rows = Gauge(label: "reshard_shard_rows", dimensions: [("shard", shard)], factory: factory)
    }

    /// Times `body` as one operation on `shard` (this metrics' shard).
    func measure<T>(_ operation: Operation, shard: ShardID, window: LatencyWindow, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        counters[operation]?.increment()
        do {
            let result = try await body()
            let elapsed = ContinuousClock.now - start
            timers[operation]?.record(duration: elapsed)
            window.record(micros: elapsed.wholeMicroseconds, shard: shard)
            return result
        } catch {
            errors[operation]?.increment()
            throw error
        }
    }
}

/// The latencies of the router's shard calls: the last two seconds sample by sample, for the
/// migration throttle's view of the foreground, and the per-second history the dashboard and the
/// migration report chart. A fixed ring bounds memory; entries older than the horizon do not
/// count, so an idle router reports no p99 rather than a stale one. Both live under one lock, so
/// a request pays for one critical section.
final class LatencyWindow: Sendable {
    private struct Sample {
        var at: ContinuousClock.Instant
        var micros: UInt64
    }

    private struct State {
        var samples: [Sample?] = Array(repeating: nil, count: LatencyWindow.capacity)
        var next = 0
        var history = LatencyHistory()
    }

    private static let capacity = 2_048
    private static let horizon: Duration = .seconds(2)
    private let state = Mutex(State())
    private let wallMillis: @Sendable () -> UInt64

    init(wallMillis: @escaping @Sendable () -> UInt64) {
        self.wallMillis = wallMillis
    }

    func record(micros: UInt64, shard: ShardID) {
        let sample = Sample(at: .now, micros: micros)
        let now = wallMillis()
        state.withLock { state in
            state.samples[state.next] = sample
            state.next = (state.next + 1) % Self.capacity
            state.history.record(micros: micros, shard: shard, nowMillis: now)
        }
    }

    /// The 99th percentile of the recent calls, or nil when there were none.
    var p99Micros: UInt64? {
        let cutoff = ContinuousClock.now - Self.horizon
        let values = state.withLock { state in state.samples.compactMap { $0 }.filter { $0.at >= cutoff }.map(\.micros) }.sorted()
        guard !values.isEmpty else { return nil }
        return values[min(values.count - 1, values.count * 99 / 100)]
    }

    /// The complete seconds since `fromSecond` (seconds since 1970), oldest first.
    func seconds(from fromSecond: UInt64) -> [LatencySecond] {
        let now = wallMillis()
        return state.withLock { $0.history.seconds(from: fromSecond, nowMillis: now) }
    }

    /// `shard`'s requests per second and p99 over its last few complete seconds.
    func recent(_ shard: ShardID) -> (requestsPerSecond: Double, p99Micros: UInt64?) {
        let now = wallMillis()
        return state.withLock { $0.history.recent(shard, nowMillis: now) }
    }
}

/// How requests that met a fence above the router's generation ended: the one sign, from the
/// outside, that a router routed by an old map (it missed a notification, or the switch was
/// under way) and whether it caught up.
struct FenceMetrics: Sendable {
    enum Outcome: String, Sendable {
        /// A newer map was found and the request went to the new owner.
        case rerouted
        /// No newer map (a write waited the hold bound for one first): a write is refused with
        /// 503, a read keeps the old owner's answer, which still holds every acknowledged write.
        case noNewerMap = "no_newer_map"
    }

    private let counters: [String: Counter]

    init(factory: any MetricsFactory) {
        var counters: [String: Counter] = [:]
        for request in ["read", "write"] {
            for outcome in [Outcome.rerouted, .noNewerMap] {
                counters[request + outcome.rawValue] = Counter(
                    label: "reshard_fenced_requests_total", dimensions: [("request", request), ("outcome", outcome.rawValue)],
                    factory: factory)
            }
        }
        self.counters = counters
    }

    func record(write: Bool, _ outcome: Outcome) {
        counters[(write ? "write" : "read") + outcome.rawValue]?.increment()
    }
}
