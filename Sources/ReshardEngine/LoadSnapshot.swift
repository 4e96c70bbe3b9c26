import ReshardCore

/// A router's load as it reports it to the metadata store, for every other process to merge:
/// its last complete windows (only the buckets that saw load) and its top keys per shard.
/// Compact on purpose: a router saves one every `LoadSnapshot.reportEvery`, and a busy router's
/// windows touch thousands of buckets.
public struct LoadSnapshot: Sendable, Hashable, Codable {
    /// Complete windows a report carries: enough for the planner's 10-window rule while a
    /// report is up to `reportEvery` old.
    public static let reportedWindows = 15
    /// How often a router with load reports it.
    public static let reportEvery = Duration.seconds(5)
    /// A report older than this (by the metadata store's clock) is from a router that stopped:
    /// its windows have aged out anyway.
    public static let staleAfterMillis: UInt64 = 60_000

    /// One window: its epoch and one row per bucket, `[bucket, reads, writes, bytes, micros]`.
    public struct Window: Sendable, Hashable, Codable {
        public var epoch: UInt64
        public var buckets: [[UInt64]]
    }

    /// One shard's sampled keys.
    public struct Keys: Sendable, Hashable, Codable {
        public var capacity: Int
        public var total: UInt64
        public var entries: [TopKeys.Entry]
    }

    /// The router's clock when it reported; windows up to this moment's are complete.
    public var asOfMillis: UInt64
    public var windowMillis: UInt64
    public var windows: [Window]
    public var keys: [String: Keys]

    enum CodingKeys: String, CodingKey {
        case asOfMillis = "as_of_ms", windowMillis = "window_ms", windows, keys
    }

    init(asOfMillis: UInt64, windowMillis: UInt64, windows: [Window], keys: [String: Keys]) {
        self.asOfMillis = asOfMillis
        self.windowMillis = windowMillis
        self.windows = windows
        self.keys = keys
    }

    /// What `recorder` holds at `now`: the last `reportedWindows` complete windows that saw
    /// load; nil when none did (a quiet router reports nothing).
    public init?(_ recorder: LoadRecorder, now: UInt64) {
        let (load, keys) = recorder.report(now: now)
        let windows = load.completeWindows(now: now).suffix(Self.reportedWindows).filter { !$0.buckets.isEmpty }
        guard !windows.isEmpty else { return nil }
        asOfMillis = now
        windowMillis = load.windowMillis
        self.windows = windows.map { window in
            Window(
                epoch: window.epoch,
                buckets: window.buckets.keys.sorted().map { bucket in
                    let counts = window.buckets[bucket, default: LoadCounts()]
                    return [UInt64(bucket), counts.reads, counts.writes, counts.bytes, counts.micros]
                })
        }
        self.keys = Dictionary(
            uniqueKeysWithValues: keys.map { shard, summary in
                (shard.rawValue, Keys(capacity: summary.capacity, total: summary.total, entries: summary.entries))
            })
    }

    /// Adds this report into `windows` and `keys` (the reader's, at its clock `now`); false,
    /// adding nothing, when it does not hold together (another window length, a malformed row, a
    /// summary that breaks its rules, a window further ahead of the reader's clock than any
    /// report's span: merged, it would age out every window the reader keeps). A damaged report
    /// is left out rather than half counted.
    func merge(into windows: inout LoadWindows, keys: inout [ShardID: TopKeys], now: UInt64) -> Bool {
        guard windowMillis == windows.windowMillis else { return false }
        let latest = windows.epoch(at: now).addingReportingOverflow(UInt64(Self.reportedWindows)).partialValue
        var rows: [(bucket: UInt16, epoch: UInt64, counts: LoadCounts)] = []
        for window in self.windows {
            guard window.epoch <= latest else { return false }
            for row in window.buckets {
                guard row.count == 5, row[0] < UInt64(LoadWindows.bucketCount) else { return false }
                rows.append((UInt16(row[0]), window.epoch, LoadCounts(reads: row[1], writes: row[2], bytes: row[3], micros: row[4])))
            }
        }
        var summaries: [ShardID: TopKeys] = [:]
        for (name, part) in self.keys {
            guard let shard = ShardID(name), let summary = TopKeys(capacity: part.capacity, total: part.total, entries: part.entries)
            else { return false }
            summaries[shard] = summary
        }
        for row in rows { windows.record(bucket: row.bucket, epoch: row.epoch, row.counts) }
        for (shard, summary) in summaries {
            if keys[shard] == nil { keys[shard] = summary } else { keys[shard]?.merge(summary) }
        }
        return true
    }
}
