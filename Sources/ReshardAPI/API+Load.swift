extension API {
    /// `GET /v1/load`: where the routers' requests went, per shard of the map, the most
    /// requested keys per shard, and what the hot-spot planner makes of it.
    public struct LoadReport: Codable, Sendable, Hashable {
        /// The router that answered.
        public var router: String
        /// The routers whose load is counted: the one that answered, then every other that
        /// reported its load in the last minute.
        public var routers: [String]
        /// The length of a window, and how many complete windows were judged.
        public var windowMs: UInt64
        public var windows: Int
        /// What load is measured by: `requests`, `bytes` or `time` (microseconds).
        public var signal: String
        /// The shard map the load is read against.
        public var generation: UInt64
        /// Every shard of the map, busiest first.
        public var shards: [ShardLoad]
        /// The busiest shard's load over the mean, and after the proposed move (if any).
        public var maxOverMean: Double
        public var predictedMaxOverMean: Double?
        public var finding: LoadFinding

        enum CodingKeys: String, CodingKey {
            case router, routers, windowMs = "window_ms", windows, signal, generation, shards, maxOverMean = "max_over_mean"
            case predictedMaxOverMean = "predicted_max_over_mean", finding
        }

        public init(
            router: String, routers: [String], windowMs: UInt64, windows: Int, signal: String, generation: UInt64, shards: [ShardLoad],
            maxOverMean: Double,
            predictedMaxOverMean: Double?, finding: LoadFinding
        ) {
            self.router = router
            self.routers = routers
            self.windowMs = windowMs
            self.windows = windows
            self.signal = signal
            self.generation = generation
            self.shards = shards
            self.maxOverMean = maxOverMean
            self.predictedMaxOverMean = predictedMaxOverMean
            self.finding = finding
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(router, forKey: .router)
            try container.encode(routers, forKey: .routers)
            try container.encode(windowMs, forKey: .windowMs)
            try container.encode(windows, forKey: .windows)
            try container.encode(signal, forKey: .signal)
            try container.encode(generation, forKey: .generation)
            try container.encode(shards, forKey: .shards)
            try container.encode(maxOverMean, forKey: .maxOverMean)
            try container.encode(predictedMaxOverMean, forKey: .predictedMaxOverMean)
            try container.encode(finding, forKey: .finding)
        }
    }

    /// One shard's load over the windows judged.
    public struct ShardLoad: Codable, Sendable, Hashable {
        public var shard: String
        public var load: Double
        /// Its share of all shards' load (0 when there was none).
        public var share: Double
        /// Its most requested keys (`table/key`), most first: `count` is an upper bound of the
        /// requests, `count - error` a lower one.
        public var topKeys: [TopKey]

        enum CodingKeys: String, CodingKey {
            case shard, load, share, topKeys = "top_keys"
        }

        public init(shard: String, load: Double, share: Double, topKeys: [TopKey]) {
            self.shard = shard
            self.load = load
            self.share = share
            self.topKeys = topKeys
        }
    }

    /// A sampled key and its bounds.
    public struct TopKey: Codable, Sendable, Hashable {
        public var key: String
        public var count: UInt64
        public var error: UInt64

        public init(key: String, count: UInt64, error: UInt64) {
            self.key = key
            self.count = count
            self.error = error
        }
    }

    /// What the planner concludes: `not_enough_data`, `balanced`, `warming` (hot, not for long
    /// enough yet), `hot_key` (one key is the heat: reported, never split), `move` (the range
    /// to move and where), or `no_worthwhile_move`. `advice` says it in words.
    public struct LoadFinding: Codable, Sendable, Hashable {
        public var kind: String
        public var shard: String?
        public var key: String?
        public var share: Double?
        public var hotWindows: Int?
        public var range: RangeAssignment?
        public var advice: String

        enum CodingKeys: String, CodingKey {
            case kind, shard, key, share, hotWindows = "hot_windows", range, advice
        }

        public init(
            kind: String, shard: String? = nil, key: String? = nil, share: Double? = nil, hotWindows: Int? = nil,
            range: RangeAssignment? = nil, advice: String
        ) {
            self.kind = kind
            self.shard = shard
            self.key = key
            self.share = share
            self.hotWindows = hotWindows
            self.range = range
            self.advice = advice
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(shard, forKey: .shard)
            try container.encode(key, forKey: .key)
            try container.encode(share, forKey: .share)
            try container.encode(hotWindows, forKey: .hotWindows)
            try container.encode(range, forKey: .range)
            try container.encode(advice, forKey: .advice)
        }
    }
}
