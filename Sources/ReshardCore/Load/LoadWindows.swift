/// What a router served in one part of the hash space: requests, payload bytes and the time it
/// spent. Counters saturate instead of trapping, so a figure merged from many routers over a
/// long uptime is at worst pinned at its maximum.
public struct LoadCounts: Sendable, Hashable, Codable {
    public var reads: UInt64
    public var writes: UInt64
    public var bytes: UInt64
    public var micros: UInt64

    public init(reads: UInt64 = 0, writes: UInt64 = 0, bytes: UInt64 = 0, micros: UInt64 = 0) {
        self.reads = reads
        self.writes = writes
        self.bytes = bytes
        self.micros = micros
    }

    /// Reads and writes.
    public var requests: UInt64 { reads.adding(saturating: writes) }

    public var isZero: Bool { self == LoadCounts() }

    public mutating func add(_ other: LoadCounts) {
        reads = reads.adding(saturating: other.reads)
        writes = writes.adding(saturating: other.writes)
        bytes = bytes.adding(saturating: other.bytes)
        micros = micros.adding(saturating: other.micros)
    }

    /// One signal of load, as the planner weighs it.
    public func value(of signal: LoadSignal) -> Double {
        switch signal {
        case .requests: Double(requests)
        case .bytes: Double(bytes)
        case .time: Double(micros)
        }
    }
}

/// The load signals a planner can balance by (rows are counted by the stores, not here).
public enum LoadSignal: String, Sendable, Hashable, Codable, CaseIterable {
    case requests, bytes, time
}

/// Load per hash-space bucket in consecutive fixed windows of wall time, the newest
/// `windowCount` kept: older windows fall off as time moves on, which is the decay. Fixed
/// windows (rather than an exponential average) keep every figure an exact integer, merge by
/// plain addition across routers whose clocks agree to within a window, and let a planner ask
/// the question the field's rule of thumb asks: was this range hot in each of the last N windows?
///
/// The hash space is cut into `bucketCount` equal buckets by the hash's top bits; a map range
/// that does not fall on bucket boundaries is given the share of a partial bucket that it
/// covers (`load(in:)`), an approximation of at most one bucket per range end.
public struct LoadWindows: Sendable, Hashable {
    /// 4,096 buckets: a 12-bit prefix of the hash.
    public static let bucketBits = 12
    public static let bucketCount = 1 << bucketBits
    /// Bounds a decoded (merged, possibly damaged) document.
    public static let maxWindowCount = 360

    /// One window: its index (`wall millis / windowMillis`) and the buckets that saw load.
    public struct Window: Sendable, Hashable {
        public let epoch: UInt64
        public internal(set) var buckets: [UInt16: LoadCounts]

        public var total: LoadCounts { buckets.values.reduce(into: LoadCounts()) { $0.add($1) } }
    }

    public let windowMillis: UInt64
    public let windowCount: Int
    /// Oldest first; epochs strictly increasing and within `windowCount` of the newest.
    public private(set) var windows: [Window] = []
    /// Requests that arrived for a window already dropped (a clock that went back, a late merge).
    public private(set) var dropped: UInt64 = 0

    /// `windowCount` windows of `windowMillis` each; nil for a zero length or a count out of
    /// 1…`maxWindowCount`.
    public init?(windowMillis: UInt64, windowCount: Int) {
        guard windowMillis > 0, (1...Self.maxWindowCount).contains(windowCount) else { return nil }
        self.init(validMillis: windowMillis, count: windowCount)
    }

    private init(validMillis: UInt64, count: Int) {
        self.windowMillis = validMillis
        self.windowCount = count
    }

    /// One-second windows over the last minute: what a router keeps.
    public static let lastMinute = LoadWindows(validMillis: 1_000, count: 60)

    /// The bucket `hash` falls in.
    public static func bucket(of hash: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: hash >> UInt64(64 - bucketBits)) }

    /// The hashes of bucket `bucket`.
    public static func range(of bucket: UInt16) -> HashRange {
        let width = UInt64(1) << UInt64(64 - bucketBits)
        let start = UInt64(bucket) * width
        return HashRange(start: start, last: start + (width - 1))
    }

    /// The window `now` falls in.
    public func epoch(at now: UInt64) -> UInt64 { now / windowMillis }

    /// Counts `counts` against the bucket of `hash` in the window of `now`.
    public mutating func record(hash: UInt64, _ counts: LoadCounts, now: UInt64) {
        add(counts, bucket: Self.bucket(of: hash), epoch: epoch(at: now))
    }

    /// Counts `counts` against `bucket` in window `epoch`: how another router's report is added
    /// back. A bucket outside the hash space (a damaged report) is counted as dropped.
    public mutating func record(bucket: UInt16, epoch: UInt64, _ counts: LoadCounts) {
        guard Int(bucket) < Self.bucketCount else {
            dropped = dropped.adding(saturating: counts.requests)
            return
        }
        add(counts, bucket: bucket, epoch: epoch)
    }

    /// Drops the windows that have aged out at `now`, so a quiet router's report decays too.
    public mutating func age(now: UInt64) {
        let current = epoch(at: now)
        let oldest = current >= UInt64(windowCount) ? current - UInt64(windowCount - 1) : 0
        windows.removeAll { $0.epoch < oldest }
    }

    /// Adds another router's windows (same window length) into these; a window older than
    /// every one kept here is counted as dropped. Returns false, changing nothing, when the
    /// window lengths differ: their epochs would mean different times.
    @discardableResult
    public mutating func merge(_ other: LoadWindows) -> Bool {
        guard other.windowMillis == windowMillis else { return false }
        for window in other.windows {
            for (bucket, counts) in window.buckets { add(counts, bucket: bucket, epoch: window.epoch) }
        }
        dropped = dropped.adding(saturating: other.dropped)
        return true
    }

    private mutating func add(_ counts: LoadCounts, bucket: UInt16, epoch: UInt64) {
        guard !counts.isZero else { return }
        let newest = max(windows.last?.epoch ?? epoch, epoch)
        guard newest - epoch < UInt64(windowCount) else {
            dropped = dropped.adding(saturating: counts.requests)
            return
        }
        if let index = windows.firstIndex(where: { $0.epoch >= epoch }) {
            if windows[index].epoch == epoch {
                windows[index].buckets[bucket, default: LoadCounts()].add(counts)
            } else {
                windows.insert(Window(epoch: epoch, buckets: [bucket: counts]), at: index)
            }
        } else {
            windows.append(Window(epoch: epoch, buckets: [bucket: counts]))
        }
        let oldest = newest - min(newest, UInt64(windowCount - 1))
        windows.removeAll { $0.epoch < oldest }
    }

    /// The share of `bucket`'s hashes that `range` covers (0 when they do not meet): the
    /// load of a bucket a range cuts is apportioned by it.
    public static func share(of bucket: UInt16, coveredBy range: HashRange) -> Double {
        let whole = Self.range(of: bucket)
        guard whole.last >= range.start, whole.start <= range.last else { return 0 }
        return (Double(min(whole.last, range.last) - max(whole.start, range.start)) + 1) / (Double(whole.last - whole.start) + 1)
    }

    /// The load of `buckets` (each bucket's sum, `bucketLoads`) that falls in `range`: whole
    /// buckets inside it, and of a bucket it cuts, the share it covers.
    public static func load(in range: HashRange, of buckets: [UInt16: Double]) -> Double {
        let first = bucket(of: range.start)
        let last = bucket(of: range.last)
        // In bucket order: a sum of doubles depends on its order, and a dictionary's differs
        // from process to process.
        return buckets.keys.sorted().filter { $0 >= first && $0 <= last }.reduce(0) {
            $0 + buckets[$1, default: 0] * share(of: $1, coveredBy: range)
        }
    }

    /// Each bucket's load over `windows`, summed in window order (so the same windows always
    /// give the same doubles).
    public static func bucketLoads(_ windows: [Window], signal: LoadSignal) -> [UInt16: Double] {
        var sums: [UInt16: Double] = [:]
        for window in windows {
            for (bucket, counts) in window.buckets { sums[bucket, default: 0] += counts.value(of: signal) }
        }
        return sums
    }

    /// The load of `buckets` each shard of `map` owns: a bucket that several ranges share is
    /// split between their shards by the share of its hashes each covers.
    public static func shardLoads(_ buckets: [UInt16: Double], map: ShardMap) -> [ShardID: Double] {
        var loads = Dictionary(uniqueKeysWithValues: map.shards.map { ($0, 0.0) })
        for bucket in buckets.keys.sorted() {
            let value = buckets[bucket, default: 0]
            let whole = range(of: bucket)
            var hash = whole.start
            while true {
                let owner = map.assignment(for: hash)
                let last = min(owner.range.last, whole.last)
                loads[owner.shard, default: 0] += value * share(of: bucket, coveredBy: HashRange(start: hash, last: last))
                guard last < whole.last else { break }
                hash = last + 1
            }
        }
        return loads
    }

    /// The windows that are over at `now` (the current one is still filling), oldest first,
    /// with an empty window for each one nobody recorded in: a quiet window is a cool one.
    public func completeWindows(now: UInt64) -> [Window] {
        let current = epoch(at: now)
        let count = min(UInt64(windowCount - 1), current)
        let kept = Dictionary(uniqueKeysWithValues: windows.map { ($0.epoch, $0) })
        return (current - count..<current).map { kept[$0] ?? Window(epoch: $0, buckets: [:]) }
    }
}
