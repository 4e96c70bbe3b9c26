import Logging
import Metrics
import ReshardCore
import Synchronization

/// The router's side of serving reads gradually (`serving_reads`, `write_new_read_old`): after a
/// switch that came first and a clean verification, a growing share of the moving ranges' reads
/// is answered by the new owner alone instead of by the newer of both owners.
///
/// The router judges the new owners itself, so reads go back within one read, not at the
/// migrator's next check: when more than `maxErrorRate` of the served reads failed (once 100 were
/// served), or the served reads' p99 passed `maxLatencyFactor` times the old path's p99 by more
/// than a millisecond (once 200 of each were timed), it stops serving until the migrator shows a
/// new epoch (a fresh verification), and the migrator fails the migration with the reason.
/// Going back is always safe: the old path reads both owners and takes the newer row.
public final class ServedReads: Sendable {
    /// What this router's served reads did for the current migration.
    public struct Stats: Sendable, Hashable, Codable {
        /// The migration they belong to.
        public var migration: String?
        /// Whether reads are being served by the new owners now.
        public var active = false
        /// The share served, in percent.
        public var percent: Double = 0
        /// Reads sent to the new owners alone, failed ones included.
        public var served = 0
        /// Served reads that failed.
        public var errors = 0
        /// Reads that took the old path (both owners) while a share was served: the baseline.
        public var oldPath = 0
        /// p99 of the served reads and of the old path, microseconds, over the last reads.
        public var servedP99Micros: UInt64?
        public var oldPathP99Micros: UInt64?
        /// Why this router sent its reads back, and when (wall milliseconds); nil while it serves.
        public var sentBack: String?
        public var sentBackAt: UInt64?

        /// No reads yet, for migration `migration`.
        public init(migration: String? = nil) {
            self.migration = migration
        }

        /// The share of served reads that failed.
        public var errorRate: Double { served == 0 ? 0 : Double(errors) / Double(served) }
    }

    /// Fewer served reads than this say nothing about an error rate.
    static let minimumServedForErrors = 100
    /// Fewer timings than this (on each side) say nothing about a p99.
    static let minimumTimings = 200
    /// A p99 this close to the old path's is noise, whatever the factor says.
    static let latencySlackMicros: UInt64 = 1_000
    private static let timings = 1_024

    private struct State {
        var config: RouteDirective?
        var sentBackEpoch: Int?
        var stats = Stats()
        var served = Ring()
        var oldPath = Ring()
    }

    /// The last `ServedReads.timings` latencies.
    private struct Ring {
        var values: [UInt64] = []
        var next = 0

        mutating func add(_ value: UInt64) {
            if values.count < ServedReads.timings {
                values.append(value)
            } else {
                values[next] = value
                next = (next + 1) % ServedReads.timings
            }
        }

        var p99: UInt64? {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        }
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let counters: [String: Counter]

    init(logger: Logger, factory: any MetricsFactory) {
        self.logger = logger
        var counters: [String: Counter] = [:]
        for result in ["served", "error", "old_path"] {
            counters[result] = Counter(label: "reshard_served_reads_total", dimensions: [("result", result)], factory: factory)
        }
        self.counters = counters
    }

    /// Puts `config` in force (nil: nothing served). Figures carry on within one migration.
    public func configure(_ config: RouteDirective?) {
        state.withLock { state in
            if let config, config.migration != state.stats.migration {
                state.stats = Stats(migration: config.migration)
                state.served = Ring()
                state.oldPath = Ring()
                state.sentBackEpoch = nil
            }
            if let config, let epoch = state.sentBackEpoch, config.epoch > epoch {
                state.sentBackEpoch = nil
                state.stats.sentBack = nil
                state.stats.sentBackAt = nil
            }
            state.config = config
            state.stats.active = config?.serve != nil && state.sentBackEpoch == nil
            state.stats.percent = state.stats.active ? config?.serve?.percent ?? 0 : 0
        }
    }

    /// The figures so far.
    public var stats: Stats {
        state.withLock { state in
            var stats = state.stats
            stats.servedP99Micros = state.served.p99
            stats.oldPathP99Micros = state.oldPath.p99
            return stats
        }
    }

    /// Whether a read of `hash` is served by the new owner alone: a share is served, the router's
    /// map (at `generation`) names the new owners of the move holding `hash`, and the dice say so.
    func pick(_ hash: UInt64, generation: UInt64) -> Bool {
        guard let config = state.withLock({ $0.sentBackEpoch == nil ? $0.config : nil }), let serve = config.serve,
            generation >= config.plan.target.generation, config.plan.move(containing: hash) != nil
        else { return false }
        return Double.random(in: 0..<100) < serve.percent
    }

    /// Whether a share is being served now (the old path is timed only then).
    var serving: Bool { state.withLock { $0.stats.active } }

    /// A read the new owner answered alone (`failed`: it threw), in `micros`.
    func recordServed(micros: UInt64, failed: Bool, nowMillis: UInt64) {
        counters[failed ? "error" : "served"]?.increment()
        let reason = state.withLock { state -> String? in
            state.stats.served += 1
            if failed { state.stats.errors += 1 } else { state.served.add(micros) }
            return judge(&state, nowMillis: nowMillis)
        }
        if let reason { logger.warning("served reads sent back to the old path", metadata: ["reason": "\(reason)"]) }
    }

    /// A read that took the old path (both owners) while a share was served, in `micros`.
    func recordOldPath(micros: UInt64, nowMillis: UInt64) {
        counters["old_path"]?.increment()
        let reason = state.withLock { state -> String? in
            state.stats.oldPath += 1
            state.oldPath.add(micros)
            return judge(&state, nowMillis: nowMillis)
        }
        if let reason { logger.warning("served reads sent back to the old path", metadata: ["reason": "\(reason)"]) }
    }

    /// Sends the reads back when a threshold is passed; returns why, the first time.
    private func judge(_ state: inout State, nowMillis: UInt64) -> String? {
        guard state.sentBackEpoch == nil, let config = state.config, let serve = config.serve else { return nil }
        var reason: String?
        let stats = state.stats
        if stats.served >= Self.minimumServedForErrors, stats.errorRate > serve.maxErrorRate {
            reason = "\(stats.errors) of \(stats.served) served reads failed (more than \(serve.maxErrorRate * 100) %)"
        } else if state.served.values.count >= Self.minimumTimings, state.oldPath.values.count >= Self.minimumTimings,
            let new = state.served.p99, let old = state.oldPath.p99,
            Double(new) > Double(old) * serve.maxLatencyFactor, new > old + Self.latencySlackMicros
        {
            reason = "served reads' p99 \(new) µs is over \(serve.maxLatencyFactor) × the old path's \(old) µs"
        }
        guard let reason else { return nil }
        state.sentBackEpoch = config.epoch
        state.stats.active = false
        state.stats.percent = 0
        state.stats.sentBack = reason
        state.stats.sentBackAt = nowMillis
        return reason
    }
}
