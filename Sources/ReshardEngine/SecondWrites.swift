import Logging
import Metrics
import ReshardCore
import Synchronization

/// The router's side of the strategies' write modes: `dual_write`, `traffic_replay`, and the
/// copies of the strategies that switch first (`write_new_read_old`, `routing_first`; see
/// `ShardRouter+Redirects`).
///
/// `dual_write` and `traffic_replay`: `traffic_replay`: after a client write
/// to a moving range's old owner, the write is recorded in the migration's replay log (a write
/// that cannot be recorded is carried by the changelog). `dual_write`: after such a write, the
/// same row at the version the old owner gave goes to its new owner (the old owner's answer
/// decides the client's; the second write only keeps the new owner current). A second write
/// that fails is queued in the metadata (the migration's `retry` log, at most `queueLimit`
/// entries) for the migrator to retry; one that cannot be queued is still carried by the
/// migration's changelog, which every strategy keeps as its safety net.
public final class SecondWrites: Sendable {
    /// What this router's second writes did for the current migration.
    public struct Stats: Sendable, Hashable, Codable {
        /// The migration they belong to.
        public var migration: String?
        /// Whether a write mode of a migration is in force now.
        public var active = false
        /// Second writes tried.
        public var attempts = 0
        /// Second writes the new owner took.
        public var written = 0
        /// Failed second writes queued for retries.
        public var queued = 0
        /// Failed second writes that could not be queued either (the queue full or unreachable):
        /// the changelog carries them to the new owner.
        public var unqueued = 0
        /// `traffic_replay`: client writes recorded in the replay log.
        public var recorded = 0
        /// Client writes that could not be recorded (the log full or unreachable): the changelog
        /// carries them to the new owner.
        public var unrecorded = 0
        /// After a switch that came first: rows copied from the old owner onto the new one by a
        /// write or a read that found the new owner without them.
        public var copied = 0
        /// After a switch that came first: reads the old owner answered.
        public var oldOwnerReads = 0

        /// No writes yet, for migration `migration`.
        public init(migration: String? = nil) {
            self.migration = migration
        }

        private enum CodingKeys: String, CodingKey {
            case migration, active, attempts, written, queued, unqueued, recorded, unrecorded, copied, oldOwnerReads
        }

        /// Decodes figures, reports of routers that predate the copies included.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            migration = try c.decodeIfPresent(String.self, forKey: .migration)
            active = try c.decode(Bool.self, forKey: .active)
            attempts = try c.decode(Int.self, forKey: .attempts)
            written = try c.decode(Int.self, forKey: .written)
            queued = try c.decode(Int.self, forKey: .queued)
            unqueued = try c.decode(Int.self, forKey: .unqueued)
            recorded = try c.decode(Int.self, forKey: .recorded)
            unrecorded = try c.decode(Int.self, forKey: .unrecorded)
            copied = try c.decodeIfPresent(Int.self, forKey: .copied) ?? 0
            oldOwnerReads = try c.decodeIfPresent(Int.self, forKey: .oldOwnerReads) ?? 0
        }
    }

    /// The most failed second writes a migration's retry queue holds.
    public static let queueLimit = 100_000
    /// The most recorded writes a migration's replay log holds (the migrator replays and forgets
    /// them as it goes; past this the changelog carries what was not recorded).
    public static let recordLimit = 1_000_000

    private struct State {
        var config: RouteDirective?
        var stats = Stats()
    }

    private let state = Mutex(State())
    private let counters: [String: Counter]
    private let copiedCounter: Counter

    init(factory: any MetricsFactory) {
        var counters: [String: Counter] = [:]
        for result in ["written", "queued", "unqueued", "recorded", "unrecorded"] {
            counters[result] = Counter(label: "reshard_second_writes_total", dimensions: [("result", result)], factory: factory)
        }
        self.counters = counters
        copiedCounter = Counter(label: "reshard_redirect_copies_total", factory: factory)
    }

    /// Puts `config` in force (nil, or a mode without dual writes: none). Figures carry on
    /// within one migration.
    func configure(_ config: RouteDirective?) {
        state.withLock { state in
            if let config, config.migration != state.stats.migration { state.stats = Stats(migration: config.migration) }
            state.config = config?.routes.writes == .owner ? nil : config
            state.stats.active = state.config != nil
        }
    }

    /// The figures so far.
    public var stats: Stats { state.withLock { $0.stats } }

    /// The move whose new owner must also take a write that `owner` took at `generation`, and
    /// the migration it belongs to: only while the write went to the move's old owner (after
    /// the switch the map names the new owner, and reverse replication feeds the old one).
    func pick(_ hash: UInt64, owner: ShardID, generation: UInt64) -> Pick? {
        guard let config = state.withLock({ $0.config }), config.routes.writes != .copyFirst,
            let move = config.moving(hash, at: generation), move.source == owner
        else {
            return nil
        }
        return Pick(move: move, migration: config.migration, mode: config.routes.writes)
    }

    /// A write's move, migration and write mode, when it needs a second write or a record.
    struct Pick {
        let move: Move
        let migration: String
        let mode: RouteModes.Writes
    }

    /// The move whose new owner `owner` is, and the read mode, when the map switched first and
    /// a key of `hash` may still be only on the old owner (`ShardRouter+Redirects`).
    func redirect(_ hash: UInt64, owner: ShardID) -> (move: Move, reads: RouteModes.Reads)? {
        guard let config = state.withLock({ $0.config }), config.routes.writes == .copyFirst,
            let move = config.switched(hash, owner: owner)
        else { return nil }
        return (move, config.routes.reads)
    }

    /// How one second write (or recording) ended.
    enum Result: String {
        case written, queued, unqueued, recorded, unrecorded
    }

    /// Counts what a redirect did (not a second write: `attempts` stays).
    func recordRedirect(copied: Int, oldOwnerRead: Bool) {
        if copied > 0 { copiedCounter.increment(by: Int64(copied)) }
        state.withLock { state in
            state.stats.copied += copied
            if oldOwnerRead { state.stats.oldOwnerReads += 1 }
        }
    }

    func record(_ result: Result) {
        counters[result.rawValue]?.increment()
        state.withLock { state in
            state.stats.attempts += 1
            switch result {
            case .written: state.stats.written += 1
            case .queued: state.stats.queued += 1
            case .unqueued: state.stats.unqueued += 1
            case .recorded: state.stats.recorded += 1
            case .unrecorded: state.stats.unrecorded += 1
            }
        }
    }
}
