/// What a load-aware rebalance evens out: a weighted mix of rows and the routers' load signals.
/// Each part is first made a share of its own total, so a mix of rows and requests weighs what
/// share of each a shard holds, whatever their units.
public struct LoadMix: Sendable, Hashable, Codable {
    public var rows: Double
    public var requests: Double
    public var bytes: Double
    public var time: Double

    public init(rows: Double = 0, requests: Double = 0, bytes: Double = 0, time: Double = 0) {
        self.rows = rows
        self.requests = requests
        self.bytes = bytes
        self.time = time
    }

    /// One signal alone.
    public init(_ signal: LoadSignal) {
        self.init()
        switch signal {
        case .requests: requests = 1
        case .bytes: bytes = 1
        case .time: time = 1
        }
    }

    /// The largest weight a mix takes: weights are relative, and a bound keeps their sum finite.
    public static let maxWeight = 1_000.0

    /// Why these weights cannot be used (nil: they can): each in 0…`maxWeight` and finite, and
    /// at least one above zero.
    public var violation: String? {
        let all = [rows, requests, bytes, time]
        guard all.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= Self.maxWeight }) else {
            return "weights are numbers from 0 to \(Int(Self.maxWeight))"
        }
        guard all.contains(where: { $0 > 0 }) else { return "at least one weight must be above 0" }
        return nil
    }

    /// The load signals the mix weighs above zero.
    public var signals: [LoadSignal] {
        LoadSignal.allCases.filter { weight(of: $0) > 0 }
    }

    public func weight(of signal: LoadSignal) -> Double {
        switch signal {
        case .requests: requests
        case .bytes: bytes
        case .time: time
        }
    }

    /// Each bucket's weight in the mix: every part (`loads` per signal, rows counted per bucket
    /// from `rowHashes`) as a share of its own total, weighted, summed. A part with no total
    /// adds nothing. Summed in bucket and signal order, so the same inputs give the same doubles.
    public func histogram(loads: [LoadSignal: [UInt16: Double]], rowHashes: [UInt64]) -> [UInt16: Double] {
        var parts: [(weight: Double, buckets: [UInt16: Double])] = []
        if rows > 0 {
            var counts: [UInt16: Double] = [:]
            for hash in rowHashes { counts[LoadWindows.bucket(of: hash), default: 0] += 1 }
            parts.append((rows, counts))
        }
        for signal in LoadSignal.allCases where weight(of: signal) > 0 {
            parts.append((weight(of: signal), loads[signal] ?? [:]))
        }
        var mixed: [UInt16: Double] = [:]
        for (weight, buckets) in parts {
            let keys = buckets.keys.sorted()
            let total = keys.reduce(0) { $0 + max(0, buckets[$1, default: 0]) }
            guard total > 0 else { continue }
            for bucket in keys { mixed[bucket, default: 0] += weight * max(0, buckets[bucket, default: 0]) / total }
        }
        return mixed
    }

    /// The busiest shard's share of `histogram` over the mean, under `map` (1 when empty).
    public static func maxOverMean(_ histogram: [UInt16: Double], map: ShardMap) -> Double {
        let loads = LoadWindows.shardLoads(histogram, map: map)
        let shards = map.shards
        let total = shards.reduce(0) { $0 + (loads[$1] ?? 0) }
        guard total > 0, !shards.isEmpty else { return 1 }
        return (shards.map { loads[$0] ?? 0 }.max() ?? 0) / (total / Double(shards.count))
    }
}

extension LoadMix {
    /// What a load-aware plan evens out, from the routers' complete windows (oldest first):
    /// the histogram of the last `rules.sustainedWindows` of them, and how many were weighed.
    /// A rebalance is refused (`hot_key`) when one key is the heat of the busiest shard: no cut
    /// of ranges spreads one key.
    public func weigh(
        windows complete: [LoadWindows.Window], topKeys: [ShardID: TopKeys], rowHashes: [UInt64], map: ShardMap
    ) throws(PlanError) -> (histogram: [UInt16: Double], windows: Int) {
        let rules = HotSpotRules(signal: signals.first ?? .requests)
        let windows = Array(complete.suffix(rules.sustainedWindows))
        if !signals.isEmpty,
            case .hotKey(let shard, let key, let share) = HotSpotReport(map: map, windows: windows, topKeys: topKeys, rules: rules).finding
        {
            throw PlanError.hotKey(.hotKey(shard, key: key, share: share), rules: rules)
        }
        let loads = Dictionary(uniqueKeysWithValues: signals.map { ($0, LoadWindows.bucketLoads(windows, signal: $0)) })
        return (histogram(loads: loads, rowHashes: rowHashes), windows.count)
    }
}
