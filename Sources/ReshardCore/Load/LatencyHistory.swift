/// A latency histogram with logarithmic buckets: exact below 16 µs, then eight buckets per
/// power of two, so any percentile it reports is within 12.5 % above the true value, in a fixed
/// 2 KiB whatever the traffic.
public struct LatencyHistogram: Sendable, Hashable {
    /// Buckets 0…15 hold 0…15 µs exactly; from there each power of two has eight.
    static let exact: UInt64 = 16
    static let subBuckets = 8
    /// Octaves 4…39 (16 µs up to about 12.7 days) are bucketed; longer values count in the last.
    static let lastOctave = 39
    static let bucketCount = Int(exact) + (lastOctave - 3) * subBuckets

    private var counts = [UInt32](repeating: 0, count: LatencyHistogram.bucketCount)
    /// Values recorded.
    public private(set) var count: UInt64 = 0
    /// The largest value recorded, exactly.
    public private(set) var maxMicros: UInt64 = 0

    /// An empty histogram.
    public init() {}

    static func bucket(_ micros: UInt64) -> Int {
        if micros < exact { return Int(micros) }
        let octave = min(lastOctave, 63 - micros.leadingZeroBitCount)
        let sub = octave == 63 - micros.leadingZeroBitCount ? Int((micros >> UInt64(octave - 3)) & 7) : subBuckets - 1
        return Int(exact) + (octave - 4) * subBuckets + sub
    }

    /// The largest value bucket `index` holds (a percentile is reported as its bucket's top, so
    /// it is never below the truth).
    static func top(_ index: Int) -> UInt64 {
        if index < Int(exact) { return UInt64(index) }
        let octave = (index - Int(exact)) / subBuckets + 4
        let sub = UInt64((index - Int(exact)) % subBuckets)
        return ((8 + sub + 1) << UInt64(octave - 3)) - 1
    }

    /// Counts one value.
    public mutating func record(micros: UInt64) {
        let index = Self.bucket(micros)
        // A bucket saturates rather than wraps: 2^32 values in one second of one histogram
        // would take a router far beyond any load it can serve.
        if counts[index] < UInt32.max { counts[index] += 1 }
        count &+= 1
        maxMicros = max(maxMicros, micros)
    }

    /// Adds `other`'s values to these.
    public mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices {
            counts[index] = UInt32(clamping: UInt64(counts[index]) + UInt64(other.counts[index]))
        }
        count &+= other.count
        maxMicros = max(maxMicros, other.maxMicros)
    }

    /// The value at or below which `fraction` (0…1) of the values lie, as its bucket's top and
    /// never above the largest value seen; 0 for an empty histogram.
    public func percentile(_ fraction: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let wanted = max(1, UInt64((Double(count) * min(1, max(0, fraction))).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += UInt64(bucketCount)
            if seen >= wanted { return min(Self.top(index), maxMicros) }
        }
        return maxMicros
    }
}

/// One second of foreground latency: how many requests ended in it and how long they took.
public struct LatencySecond: Sendable, Hashable, Codable {
    /// The second, counted from 1970.
    public var second: UInt64
    /// Requests that ended in it.
    public var count: UInt64
    /// Median, microseconds.
    public var p50Micros: UInt64
    /// 99th percentile, microseconds.
    public var p99Micros: UInt64
    /// The slowest, microseconds.
    public var maxMicros: UInt64

    /// A second from its histogram.
    public init(second: UInt64, _ histogram: LatencyHistogram) {
        self.second = second
        count = histogram.count
        p50Micros = histogram.percentile(0.5)
        p99Micros = histogram.percentile(0.99)
        maxMicros = histogram.maxMicros
    }
}

/// The router's foreground latency, second by second: an hour of per-second summaries for
/// charts and reports (a chart of a migration needs p50 and p99 over its whole run, not the
/// throttle's two-second view), and each shard's last few seconds in full for its current p99.
/// Pure: the caller says what time it is.
public struct LatencyHistory: Sendable {
    /// Complete seconds kept.
    public let keepSeconds: Int
    /// Complete seconds per shard kept for its recent figures.
    public let shardSeconds: Int

    private var summaries: [LatencySecond] = []
    private var currentSecond: UInt64 = 0
    private var current = LatencyHistogram()
    private var currentByShard: [ShardID: LatencyHistogram] = [:]
    private var recentByShard: [ShardID: [(second: UInt64, histogram: LatencyHistogram)]] = [:]

    /// A history keeping `keepSeconds` of summaries and `shardSeconds` per shard.
    public init(keepSeconds: Int = 3_600, shardSeconds: Int = 5) {
        self.keepSeconds = max(1, keepSeconds)
        self.shardSeconds = max(1, shardSeconds)
    }

    /// Counts one request to `shard` that took `micros` and ended at `nowMillis`.
    public mutating func record(micros: UInt64, shard: ShardID, nowMillis: UInt64) {
        let second = nowMillis / 1_000
        // A clock that stepped back counts into the current second rather than rewriting history.
        if second > currentSecond { roll(to: second) }
        current.record(micros: micros)
        currentByShard[shard, default: LatencyHistogram()].record(micros: micros)
    }

    private mutating func roll(to second: UInt64) {
        if current.count > 0 {
            summaries.append(LatencySecond(second: currentSecond, current))
            // Trimmed in slices, so the cost per second stays constant on average.
            if summaries.count > keepSeconds + keepSeconds / 8 { summaries.removeFirst(summaries.count - keepSeconds) }
        }
        for (shard, histogram) in currentByShard {
            var recent = recentByShard[shard] ?? []
            recent.append((currentSecond, histogram))
            if recent.count > shardSeconds { recent.removeFirst(recent.count - shardSeconds) }
            recentByShard[shard] = recent
        }
        currentSecond = second
        current = LatencyHistogram()
        currentByShard = [:]
    }

    /// The complete seconds from `fromSecond` up to (not including) the one `nowMillis` falls in,
    /// oldest first; seconds without a request are absent.
    public func seconds(from fromSecond: UInt64 = 0, nowMillis: UInt64) -> [LatencySecond] {
        let now = nowMillis / 1_000
        var result = summaries.filter { $0.second >= fromSecond && $0.second < now }.suffix(keepSeconds)
        if current.count > 0, currentSecond < now, currentSecond >= fromSecond {
            result.append(LatencySecond(second: currentSecond, current))
        }
        return Array(result.suffix(keepSeconds))
    }

    /// `shard`'s requests per second and p99 over its last `shardSeconds` complete seconds
    /// before `nowMillis` (the second under way is not complete, so it would read low).
    public func recent(_ shard: ShardID, nowMillis: UInt64) -> (requestsPerSecond: Double, p99Micros: UInt64?) {
        let now = nowMillis / 1_000
        let oldest = now >= UInt64(shardSeconds) ? now - UInt64(shardSeconds) : 0
        var merged = LatencyHistogram()
        for entry in recentByShard[shard] ?? [] where entry.second >= oldest && entry.second < now {
            merged.merge(entry.histogram)
        }
        if currentSecond < now, currentSecond >= oldest, let histogram = currentByShard[shard] { merged.merge(histogram) }
        return (Double(merged.count) / Double(shardSeconds), merged.count > 0 ? merged.percentile(0.99) : nil)
    }
}
