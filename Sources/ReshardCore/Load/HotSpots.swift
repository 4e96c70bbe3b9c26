/// When a shard counts as hot, and what a proposal must achieve to be worth a migration.
public struct HotSpotRules: Sendable, Hashable, Codable {
    /// What load is measured by.
    public var signal: LoadSignal
    /// A shard is hot when its load is above `hotFactor` × the mean over the shards (by
    /// default 1.10, the balance a hot-spot migration aims for)…
    public var hotFactor: Double
    /// …in each of the last `sustainedWindows` complete windows: a burst is not a hot spot.
    public var sustainedWindows: Int
    /// A key that holds more than this share of a hot shard's sampled requests is the heat
    /// itself: moving ranges cannot spread one key, so it is reported, never split.
    public var dominantKeyShare: Double
    /// Hysteresis: a move is proposed only when it takes at least this share of the mean load
    /// off the hot shard. A move never takes more than half the difference between its shards,
    /// so its target is then no busier than its source and the move back is never proposed:
    /// ranges do not flap.
    public var minimumGain: Double

    public init(
        signal: LoadSignal = .requests, hotFactor: Double = 1.10, sustainedWindows: Int = 10, dominantKeyShare: Double = 0.25,
        minimumGain: Double = 0.05
    ) {
        self.signal = signal
        self.hotFactor = hotFactor
        self.sustainedWindows = sustainedWindows
        self.dominantKeyShare = dominantKeyShare
        self.minimumGain = minimumGain
    }
}

/// What the load says, and what to do about it.
public enum HotSpotFinding: Sendable, Hashable {
    /// Not enough complete windows yet to judge a sustained load.
    case notEnoughData(windows: Int, needed: Int)
    /// No shard is hot (or none has been hot for the whole window).
    case balanced
    /// `shard` is hot in `hotWindows` of the last windows, not all of them yet.
    case warming(ShardID, hotWindows: Int)
    /// One key is the heat of `shard`: cache it, replicate its reads, or salt it.
    case hotKey(ShardID, key: String, share: Double)
    /// Move `range` (part of `from`'s hottest range, cut where the load balances) to `to`.
    case move(range: HashRange, from: ShardID, to: ShardID)
    /// `shard` is hot, but no move of its ranges clears the hysteresis.
    case noWorthwhileMove(ShardID)
}

/// Where the load sits and what a planner proposes. Pure: the router's merged windows and top
/// keys in, a report out.
public struct HotSpotReport: Sendable, Hashable {
    /// Each shard's load summed over the windows judged.
    public let load: [ShardID: Double]
    /// The shards, busiest first (equal loads by id).
    public let ranked: [ShardID]
    /// The busiest shard's load over the mean, now and after the proposed move.
    public let maxOverMean: Double
    public let predictedMaxOverMean: Double?
    public let finding: HotSpotFinding

    /// Judges the last `rules.sustainedWindows` of `windows` (complete windows, oldest first)
    /// over `map`; `topKeys` are each shard's sampled keys.
    public init(map: ShardMap, windows: [LoadWindows.Window], topKeys: [ShardID: TopKeys], rules: HotSpotRules) {
        let shards = map.shards
        let judged = Array(windows.suffix(max(1, rules.sustainedWindows)))
        let perWindow = judged.map { LoadWindows.shardLoads(LoadWindows.bucketLoads([$0], signal: rules.signal), map: map) }
        let buckets = LoadWindows.bucketLoads(judged, signal: rules.signal)
        let load = LoadWindows.shardLoads(buckets, map: map)
        self.load = load
        // Sums in shard order: doubles summed in a dictionary's order differ between processes.
        let total = shards.reduce(0) { $0 + (load[$1] ?? 0) }
        let mean = shards.isEmpty ? 0 : total / Double(shards.count)
        // The busiest shard and the coolest; equal loads are ranked by id, so the answer is stable.
        let ranked = shards.sorted { (load[$1] ?? 0, $0) < (load[$0] ?? 0, $1) }
        self.ranked = ranked
        guard let hot = ranked.first, let cool = ranked.last, mean > 0 else {
            self.maxOverMean = 1
            self.predictedMaxOverMean = nil
            self.finding =
                judged.count < rules.sustainedWindows ? .notEnoughData(windows: judged.count, needed: rules.sustainedWindows) : .balanced
            return
        }
        let hotLoad = load[hot] ?? 0
        self.maxOverMean = hotLoad / mean
        guard judged.count >= rules.sustainedWindows else {
            self.predictedMaxOverMean = nil
            self.finding = .notEnoughData(windows: judged.count, needed: rules.sustainedWindows)
            return
        }
        let hotWindows = perWindow.filter { window in
            let windowMean = shards.reduce(0) { $0 + (window[$1] ?? 0) } / Double(shards.count)
            return windowMean > 0 && (window[hot] ?? 0) > rules.hotFactor * windowMean
        }.count
        guard hotWindows == perWindow.count else {
            self.predictedMaxOverMean = nil
            self.finding = hotWindows == 0 ? .balanced : .warming(hot, hotWindows: hotWindows)
            return
        }
        if let top = topKeys[hot]?.top(1).first, let keys = topKeys[hot] {
            let share = keys.guaranteedShare(of: top.key)
            if share > rules.dominantKeyShare {
                self.predictedMaxOverMean = nil
                self.finding = .hotKey(hot, key: top.key, share: share)
                return
            }
        }
        // Moving x from the hot shard to the cool one: best at half their difference, and never
        // more than takes the hot shard down to the mean.
        let wanted = min(hotLoad - mean, (hotLoad - (load[cool] ?? 0)) / 2)
        guard hot != cool, wanted > 0, let cut = Self.cut(map.ranges(of: hot), wanted: wanted, buckets: buckets) else {
            self.predictedMaxOverMean = nil
            self.finding = .noWorthwhileMove(hot)
            return
        }
        var after = load
        after[hot, default: 0] -= cut.load
        after[cool, default: 0] += cut.load
        let predicted = (after.values.max() ?? 0) / mean
        self.predictedMaxOverMean = predicted
        // Judged by what leaves the hot shard, not by the maximum: with two shards equally
        // busy, the first of two good moves lowers no maximum.
        if cut.load / mean >= rules.minimumGain {
            self.finding = .move(range: cut.range, from: hot, to: cool)
        } else {
            self.finding = .noWorthwhileMove(hot)
        }
    }

    /// The part of the hottest of `ranges` to move: the whole range when its load is at most
    /// `wanted`, else from its start to where the load moved reaches `wanted`, walking the
    /// buckets it covers (within a bucket the load is taken as even, so the cut is proportional).
    static func cut(_ ranges: [HashRange], wanted: Double, buckets: [UInt16: Double]) -> (range: HashRange, load: Double)? {
        let loaded = buckets.keys.sorted()
        /// The load of each loaded bucket's part inside `range`, in hash order.
        func segments(_ range: HashRange) -> [(segment: HashRange, load: Double)] {
            let first = LoadWindows.bucket(of: range.start)
            let last = LoadWindows.bucket(of: range.last)
            return loaded.filter { $0 >= first && $0 <= last }.map { bucket in
                let whole = LoadWindows.range(of: bucket)
                let segment = HashRange(start: max(whole.start, range.start), last: min(whole.last, range.last))
                return (segment, buckets[bucket, default: 0] * LoadWindows.share(of: bucket, coveredBy: range))
            }
        }
        func load(_ range: HashRange) -> Double { LoadWindows.load(in: range, of: buckets) }
        let weighed = ranges.map { ($0, load($0)) }
        guard let (range, rangeLoad) = weighed.max(by: { ($0.1, $1.0) < ($1.1, $0.0) }), rangeLoad > 0 else { return nil }
        if rangeLoad <= wanted { return (range, rangeLoad) }
        var moved = 0.0
        for (segment, segmentLoad) in segments(range) where segmentLoad > 0 {
            guard moved + segmentLoad >= wanted else {
                moved += segmentLoad
                continue
            }
            let span = Double(segment.last - segment.start)
            let fraction = (wanted - moved) / segmentLoad
            // Whole buckets exactly: span × fraction is not exact in doubles.
            let offset = fraction >= 1 ? segment.last - segment.start : UInt64(min(span, max(0, (span * fraction).rounded(.down))))
            let piece = HashRange(start: range.start, last: segment.start + offset)
            let pieceLoad = load(piece)
            // Never the whole range (its load is above `wanted`), nor a piece with no load.
            guard piece.last < range.last, pieceLoad > 0 else { return nil }
            return (piece, pieceLoad)
        }
        return nil
    }
}

extension HotSpotFinding {
    /// The finding's name in the API.
    public var name: String {
        switch self {
        case .notEnoughData: "not_enough_data"
        case .balanced: "balanced"
        case .warming: "warming"
        case .hotKey: "hot_key"
        case .move: "move"
        case .noWorthwhileMove: "no_worthwhile_move"
        }
    }

    /// What it means and what to do, in one sentence (the API's `advice`, the refusals' message).
    public func advice(rules: HotSpotRules) -> String {
        switch self {
        case .notEnoughData(let windows, let needed):
            "\(windows) of the \(needed) complete windows needed have passed; ask again later"
        case .balanced:
            "no shard stayed above \(rules.hotFactor)x the mean load"
        case .warming(let shard, let windows):
            "\(shard) was above \(rules.hotFactor)x the mean in \(windows) of the last \(rules.sustainedWindows) windows: not yet sustained"
        case .hotKey(let shard, let key, let share):
            "one key, \(key), holds at least \(Int((share * 100).rounded(.down))) % of \(shard)'s requests: moving ranges cannot spread it; cache it, replicate its reads, or salt the key"
        case .move(let range, let from, let to):
            "move \(range.startHex)..\(range.endHex) from \(from) to \(to) (reshard migrate split-hot-range), or spread every hot range (reshard migrate rebalance --signal \(rules.signal.rawValue))"
        case .noWorthwhileMove(let shard):
            "\(shard) is hot, but no part of its ranges moves at least \(Int(rules.minimumGain * 100)) % of the mean load"
        }
    }
}

extension HotSpotFinding {
    /// The migration that runs this finding's move (`split_hot_range`), or why there is none:
    /// `hot_key`, `not_enough_load_data`, or `no_hot_range` (nothing hot, or no move worth it).
    public func splitKind(rules: HotSpotRules) throws(PlanError) -> MigrationKind {
        switch self {
        case .move(let range, let from, let to): return .splitHotRange(range, from: from, to: to)
        case .hotKey: throw PlanError.hotKey(self, rules: rules)
        case .notEnoughData: throw PlanError(code: "not_enough_load_data", description: advice(rules: rules))
        case .balanced, .warming, .noWorthwhileMove: throw PlanError(code: "no_hot_range", description: advice(rules: rules))
        }
    }
}
