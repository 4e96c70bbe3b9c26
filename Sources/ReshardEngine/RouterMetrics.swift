import Metrics

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

    /// Times `body` as one operation on this shard.
    func measure<T>(_ operation: Operation, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        counters[operation]?.increment()
        do {
            let result = try await body()
            timers[operation]?.record(duration: ContinuousClock.now - start)
            return result
        } catch {
            errors[operation]?.increment()
            throw error
        }
    }
}
