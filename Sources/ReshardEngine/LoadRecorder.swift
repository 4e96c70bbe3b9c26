import ReshardCore
import Synchronization

/// This router's load: requests, bytes and time per hash bucket in one-second windows (the last
/// minute kept), and the most requested keys per shard, sampled over the last 10 to 20 seconds.
/// Recording is one short critical section per request, never an await.
public final class LoadRecorder: Sendable {
    /// Keys per shard the summary keeps: a key above 1/64 of a shard's requests is always in it.
    public static let keyCapacity = 64
    /// Top keys are counted in periods of this length; a report merges the current and the last,
    /// so a key that cooled down leaves the report within two periods.
    public static let keyPeriodMillis: UInt64 = 10_000

    struct State {
        var windows: LoadWindows
        var keyPeriod: UInt64 = 0
        var keys: [ShardID: TopKeys] = [:]
        var previousKeys: [ShardID: TopKeys] = [:]
    }

    private let state: Mutex<State>

    public init() {
        state = Mutex(State(windows: .lastMinute))
    }

    /// Counts one request for `key` of `table` (routed by `hash`, owned by `shard`).
    public func record(table: TableName, key: String, hash: UInt64, shard: ShardID, _ counts: LoadCounts, now: UInt64) {
        state.withLock { state in
            state.windows.record(hash: hash, counts, now: now)
            // A clock that stepped back counts into the current period instead of wiping it.
            let period = now / Self.keyPeriodMillis
            if period > state.keyPeriod {
                state.previousKeys = period == state.keyPeriod + 1 ? state.keys : [:]
                state.keys = [:]
                state.keyPeriod = period
            }
            if state.keys[shard] == nil { state.keys[shard] = TopKeys(capacity: Self.keyCapacity) }
            state.keys[shard]?.record("\(table)/\(key)", weight: max(1, counts.requests))
        }
    }

    /// The windows (aged to `now`) and each shard's top keys over the current and last period.
    public func report(now: UInt64) -> (windows: LoadWindows, keys: [ShardID: TopKeys]) {
        state.withLock { state in
            var windows = state.windows
            windows.age(now: now)
            let period = now / Self.keyPeriodMillis
            var keys: [ShardID: TopKeys] = [:]
            let current = period == state.keyPeriod ? state.keys : [:]
            let previous = period == state.keyPeriod ? state.previousKeys : period == state.keyPeriod + 1 ? state.keys : [:]
            for (shard, summary) in previous { keys[shard] = summary }
            for (shard, summary) in current {
                if keys[shard] == nil { keys[shard] = summary } else { keys[shard]?.merge(summary) }
            }
            return (windows, keys)
        }
    }
}
