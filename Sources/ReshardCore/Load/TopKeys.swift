/// The most frequent keys of a stream in bounded memory: the Space-Saving summary (Metwally,
/// Agrawal, El Abbadi 2005). It keeps `capacity` counters; a key not counted takes the
/// smallest counter's place and inherits its count as its possible overcount (`error`). Every
/// key whose true count exceeds `total / capacity` is kept, and for each kept key
/// `count - error <= true count <= count`. Summaries merge (Agarwal et al., "Mergeable
/// summaries", 2012) so routers' samples add up in the metadata store.
///
/// Ties are broken by key, never by insertion order, so the same stream (or the same summaries
/// merged in any order of routers) gives the same answer.
public struct TopKeys: Sendable, Hashable {
    /// A counted key: `count` is an upper bound of its true count, `count - error` a lower one.
    public struct Entry: Sendable, Hashable, Codable {
        public let key: String
        public var count: UInt64
        public var error: UInt64

        public init(key: String, count: UInt64, error: UInt64) {
            self.key = key
            self.count = count
            self.error = error
        }
    }

    /// At most this many counters; bounds a decoded document too.
    public static let maxCapacity = 4_096

    public let capacity: Int
    public private(set) var total: UInt64 = 0
    private var counters: [String: Entry] = [:]

    /// A summary of `capacity` counters (1…`maxCapacity`).
    public init?(capacity: Int) {
        guard (1...Self.maxCapacity).contains(capacity) else { return nil }
        self.capacity = capacity
    }

    /// A summary rebuilt from its parts (another router's report); nil when they break its
    /// rules: a capacity out of range, more entries than it, a key twice, an error above its
    /// count, or a count above the total.
    public init?(capacity: Int, total: UInt64, entries: [Entry]) {
        guard (1...Self.maxCapacity).contains(capacity), entries.count <= capacity else { return nil }
        var counters: [String: Entry] = [:]
        for entry in entries {
            guard entry.error <= entry.count, entry.count <= total, counters[entry.key] == nil else { return nil }
            counters[entry.key] = entry
        }
        self.capacity = capacity
        self.total = total
        self.counters = counters
    }

    /// Every counted key, largest first: with `capacity` and `total`, what `init(capacity:total:entries:)` takes back.
    public var entries: [Entry] { Self.ranked(counters.values) }

    /// Counts `weight` occurrences of `key`.
    public mutating func record(_ key: String, weight: UInt64 = 1) {
        guard weight > 0 else { return }
        total = total.adding(saturating: weight)
        if var entry = counters[key] {
            entry.count = entry.count.adding(saturating: weight)
            counters[key] = entry
            return
        }
        if counters.count < capacity {
            counters[key] = Entry(key: key, count: weight, error: 0)
            return
        }
        guard let smallest = smallestEntry else { return }
        counters[smallest.key] = nil
        counters[key] = Entry(key: key, count: smallest.count.adding(saturating: weight), error: smallest.count)
    }

    /// The counter a new key replaces: the smallest count, the greatest key among equals (so
    /// the smaller keys, listed first in `top`, stay).
    private var smallestEntry: Entry? {
        counters.values.min { ($0.count, $1.key) < ($1.count, $0.key) }
    }

    /// The least count a key not kept here may have had: the smallest counter once all are in
    /// use, else 0.
    public var floor: UInt64 { counters.count < capacity ? 0 : smallestEntry?.count ?? 0 }

    /// Adds another summary: each key's bounds are the sums of its bounds in both (a key one of
    /// them does not keep counts that one's floor, which it may have had), then the `capacity`
    /// largest counts are kept.
    public mutating func merge(_ other: TopKeys) {
        let (mine, theirs) = (floor, other.floor)
        var merged: [String: Entry] = [:]
        for key in Set(counters.keys).union(other.counters.keys) {
            let a = counters[key] ?? Entry(key: key, count: mine, error: mine)
            let b = other.counters[key] ?? Entry(key: key, count: theirs, error: theirs)
            merged[key] = Entry(key: key, count: a.count.adding(saturating: b.count), error: a.error.adding(saturating: b.error))
        }
        counters = Dictionary(uniqueKeysWithValues: Self.ranked(merged.values).prefix(capacity).map { ($0.key, $0) })
        total = total.adding(saturating: other.total)
    }

    /// The `limit` largest counts, largest first (equal counts by key).
    public func top(_ limit: Int) -> [Entry] { Array(Self.ranked(counters.values).prefix(max(0, limit))) }

    /// What this summary guarantees of `key`'s share of the total: its lower bound over the
    /// total (0 for a key not kept, or an empty summary).
    public func guaranteedShare(of key: String) -> Double {
        guard total > 0, let entry = counters[key] else { return 0 }
        return Double(entry.count - entry.error) / Double(total)
    }

    private static func ranked(_ entries: some Sequence<Entry>) -> [Entry] {
        entries.sorted { ($1.count, $0.key) < ($0.count, $1.key) }
    }
}
