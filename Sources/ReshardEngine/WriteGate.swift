import Foundation
import ReshardCore
import Synchronization

/// Holds client writes to ranges that are cutting over (DESIGN.md cutover step 2).
///
/// A held write waits until `release()` and then routes by whatever map is current, or gives
/// up after the router's bound with a retryable error: it is never dropped silently. The time
/// each held write waited is the write pause the cutover cost, and is recorded.
public final class WriteGate: Sendable {
    private struct Waiter {
        let hash: UInt64
        let since: ContinuousClock.Instant
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var held: [HashRange] = []
        /// The one table held (a shard-key change's switch); nil: every table's writes to `held`.
        var table: TableName?
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 0
        var pauses = PauseRecorder()
        var observer: (@Sendable (Duration) -> Void)?

        mutating func record(_ wait: Duration) {
            pauses.record(wait)
            observer?(wait)
        }

        /// Whether a write of `table` (nil: unknown) to `hash` waits.
        func holds(_ hash: UInt64, table: TableName?) -> Bool {
            if let held = self.table, held != table { return false }
            return self.held.contains { $0.contains(hash) }
        }
    }

    private let state = Mutex(State())

    /// A gate holding nothing.
    public init() {}

    /// Starts holding writes to `ranges` (replacing any previous hold).
    public func hold(_ ranges: [HashRange], table: TableName? = nil) {
        state.withLock { state in
            state.held = ranges.sorted()
            state.table = table
        }
    }

    /// Lets every held write go.
    public func release() {
        let now = ContinuousClock.now
        let waiters = state.withLock { state -> [Waiter] in
            state.held = []
            state.table = nil
            // Recorded here, not by the resumed writers: the migrator takes the figures right
            // after releasing, before those tasks have run again.
            for waiter in state.waiters.values { state.record(now - waiter.since) }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.continuation.resume(returning: true) }
    }

    /// How many writes are waiting right now.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Whether any range is held.
    public var isHolding: Bool { state.withLock { !$0.held.isEmpty } }

    /// Whether writes to `hash` are held.
    public func holds(_ hash: UInt64, table: TableName? = nil) -> Bool {
        state.withLock { state in state.holds(hash, table: table) }
    }

    /// Waits while `hash` is held. Returns false when `timeout` passed first (the caller answers
    /// 503 with Retry-After); true when the write may go on.
    public func admit(_ hash: UInt64, table: TableName? = nil, timeout: Duration) async -> Bool {
        // Fast path: one lock and an empty check when no cutover is running.
        guard holds(hash, table: table) else { return true }
        let start = ContinuousClock.now
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let id = state.withLock { state -> UInt64? in
                // Re-check under the lock: the hold may have gone since the fast path.
                guard state.holds(hash, table: table) else { return nil }
                state.nextID += 1
                state.waiters[state.nextID] = Waiter(hash: hash, since: start, continuation: continuation)
                return state.nextID
            }
            guard let id else {
                continuation.resume(returning: true)
                return
            }
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.expire(id)
            }
        }
    }

    private func expire(_ id: UInt64) {
        let now = ContinuousClock.now
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiters.removeValue(forKey: id) else { return nil }
            state.record(now - waiter.since)
            return waiter
        }
        waiter?.continuation.resume(returning: false)
    }

    /// Calls `observer` with every held write's wait as it ends (released or timed out), under
    /// the gate's lock, so it must be quick. The cutover benchmark collects the waits of every
    /// held write this way; the migrator's per-cutover summary keeps only percentiles.
    public func observeWaits(_ observer: (@Sendable (Duration) -> Void)?) {
        state.withLock { $0.observer = observer }
    }

    /// Pause figures of every write that was held, then clears them.
    public func takePauses() -> PauseSummary {
        state.withLock { state in
            defer { state.pauses = PauseRecorder() }
            return state.pauses.summary
        }
    }
}

/// Write-pause figures: how long held writes waited.
public struct PauseSummary: Sendable, Hashable, Codable {
    /// How many writes were held.
    public var count: Int
    /// Median wait, milliseconds.
    public var p50Millis: Double
    /// 99th percentile wait, milliseconds.
    public var p99Millis: Double
    /// Longest wait, milliseconds.
    public var maxMillis: Double

    /// Figures as measured.
    public init(count: Int, p50Millis: Double, p99Millis: Double, maxMillis: Double) {
        self.count = count
        self.p50Millis = p50Millis
        self.p99Millis = p99Millis
        self.maxMillis = maxMillis
    }
}

/// Keeps up to 100,000 samples; enough for percentiles of a cutover's held writes without
/// growing with the load.
struct PauseRecorder {
    private var samples: [Double] = []
    private var seen = 0
    private var maximum = 0.0

    mutating func record(_ duration: Duration) {
        let millis = duration.milliseconds
        seen += 1
        maximum = max(maximum, millis)
        if samples.count < 100_000 { samples.append(millis) }
    }

    var summary: PauseSummary {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        return PauseSummary(count: seen, p50Millis: percentile(0.5), p99Millis: percentile(0.99), maxMillis: maximum)
    }
}
