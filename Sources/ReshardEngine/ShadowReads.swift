import Logging
import Metrics
import ReshardCore
import Synchronization

/// The router's side of a migration's canary: which reads are shadow-read from the new owners,
/// and what those reads found.
///
/// A chosen read goes to the new owner first and to the old owner second; the old owner's answer
/// is returned, as before the canary (it is the only owner that has every acknowledged write
/// until the switch), and the two are compared. Reading in that order means the new owner can be
/// behind but never ahead (`ShadowRead`). A real mismatch halts the canary here at once, without
/// waiting for the migrator: reads stop touching the new owners until the migrator configures a
/// new epoch (a fresh verification).
public final class ShadowReads: Sendable {
    /// What the migrator asks routers to shadow-read.
    public typealias Config = RouteDirective

    /// One shadow read: what each side held and how they compare.
    public struct Comparison: Sendable, Hashable, Codable {
        /// The table.
        public let table: TableName
        /// The primary key.
        public let pk: String
        /// The old owner's version (nil: no row).
        public let sourceVersion: UInt64?
        /// The new owner's version (nil: no row).
        public let targetVersion: UInt64?
        /// Lag, or the class of a real difference.
        public let outcome: ShadowOutcome
        /// When (milliseconds of wall time).
        public let at: UInt64

        /// A comparison as a router recorded it.
        public init(table: TableName, pk: String, sourceVersion: UInt64?, targetVersion: UInt64?, outcome: ShadowOutcome, at: UInt64) {
            self.table = table
            self.pk = pk
            self.sourceVersion = sourceVersion
            self.targetVersion = targetVersion
            self.outcome = outcome
            self.at = at
        }

        /// `table/pk: class (source vN, target vM)`.
        public var description: String {
            let versions = "source v\(sourceVersion.map(String.init) ?? "-"), target v\(targetVersion.map(String.init) ?? "-")"
            return "\(table)/\(pk): \(outcome.name) (\(versions))"
        }
    }

    /// What the shadow reads of the current migration found.
    public struct Stats: Sendable, Hashable, Codable {
        /// The migration they belong to.
        public var migration: String?
        /// Whether reads are being shadow-read now.
        public var active = false
        /// The share shadow-read, in percent.
        public var percent: Double = 0
        /// Whether a real mismatch stopped the canary in this router.
        public var halted = false
        /// Shadow reads done.
        public var reads = 0
        /// Both sides agreed.
        public var matches = 0
        /// The new owner was behind by a recent write.
        public var lag = 0
        /// Real differences.
        public var mismatches = 0
        /// New-owner reads that failed (the client still got the old owner's answer).
        public var errors = 0
        /// New-owner read latency minus old-owner read latency, microseconds: median and p99 of
        /// the last reads.
        public var latencyDeltaP50Micros: Int64?
        public var latencyDeltaP99Micros: Int64?
        /// The last real mismatches and lags, newest last.
        public var recent: [Comparison] = []

        /// No reads yet, for migration `migration`.
        public init(migration: String? = nil) {
            self.migration = migration
        }
    }

    private struct State {
        var config: Config?
        var haltedEpoch: Int?
        var stats = Stats()
        var deltas: [Int64] = []
        var nextDelta = 0
    }

    private static let recentLimit = 20
    private static let deltaSamples = 1_024
    private let state = Mutex(State())
    private let logger: Logger
    private let counters: [String: Counter]

    init(logger: Logger, factory: any MetricsFactory) {
        self.logger = logger
        var counters: [String: Counter] = [:]
        for result in ["match", "lag", "mismatch", "error"] {
            counters[result] = Counter(label: "reshard_shadow_reads_total", dimensions: [("result", result)], factory: factory)
        }
        self.counters = counters
    }

    /// Puts `config` in force (nil: no canary). Figures carry on within one migration.
    public func configure(_ config: Config?) {
        state.withLock { state in
            if let config, config.migration != state.stats.migration {
                state.stats = Stats(migration: config.migration)
                state.deltas = []
                state.haltedEpoch = nil
            }
            if let config, let halted = state.haltedEpoch, config.epoch > halted { state.haltedEpoch = nil }
            state.config = config
            state.stats.active = (config?.shadowPercent ?? 0) > 0 && state.haltedEpoch == nil
            state.stats.percent = state.stats.active ? config?.shadowPercent ?? 0 : 0
            state.stats.halted = state.haltedEpoch != nil
        }
    }

    /// The figures so far.
    public var stats: Stats {
        state.withLock { state in
            var stats = state.stats
            let sorted = state.deltas.sorted()
            if !sorted.isEmpty {
                stats.latencyDeltaP50Micros = sorted[sorted.count / 2]
                stats.latencyDeltaP99Micros = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            }
            return stats
        }
    }

    /// A read chosen for a shadow read.
    struct Pick: Sendable {
        /// The move whose new owner also answers it (a shard-key change's moves keep their owner).
        let move: Move
        let lagAllowanceMillis: UInt64
        /// The generation the canary's plan switches to: a router there reads no shadow.
        let switchGeneration: UInt64
        /// A shard-key change's layouts: the new one answers by primary key instead.
        let relayout: Relayout?
    }

    /// The move whose new owner should also answer this read, if the read is chosen. Every GET
    /// asks, so with no canary it answers before hashing the key.
    func pick(shardKey: String) -> Pick? {
        guard let config = state.withLock({ $0.haltedEpoch == nil ? $0.config : nil }), config.shadowPercent > 0,
            let move = config.plan.move(containing: KeyHash.of(shardKey)), Double.random(in: 0..<100) < config.shadowPercent
        else { return nil }
        return Pick(
            move: move, lagAllowanceMillis: config.lagAllowanceMillis, switchGeneration: config.plan.target.generation,
            relayout: config.plan.relayout)
    }

    /// Records one comparison; a real mismatch halts the canary in this router.
    func record(_ comparison: Comparison, latencyDeltaMicros: Int64) {
        // One metric label for every class of real difference keeps the series few.
        counters[comparison.outcome.isMismatch ? "mismatch" : comparison.outcome.name]?.increment()
        state.withLock { state in
            state.stats.reads += 1
            switch comparison.outcome {
            case .match: state.stats.matches += 1
            case .lag: state.stats.lag += 1
            case .mismatch:
                state.stats.mismatches += 1
                state.haltedEpoch = state.config?.epoch ?? 0
                state.stats.active = false
                state.stats.halted = true
                state.stats.percent = 0
            }
            if comparison.outcome != .match {
                if state.stats.recent.count >= Self.recentLimit { state.stats.recent.removeFirst() }
                state.stats.recent.append(comparison)
            }
            if state.deltas.count < Self.deltaSamples {
                state.deltas.append(latencyDeltaMicros)
            } else {
                state.deltas[state.nextDelta] = latencyDeltaMicros
                state.nextDelta = (state.nextDelta + 1) % Self.deltaSamples
            }
        }
        let metadata: Logger.Metadata = [
            "table": "\(comparison.table)", "pk": "\(comparison.pk)",
            "source_version": "\(comparison.sourceVersion.map(String.init) ?? "-")",
            "target_version": "\(comparison.targetVersion.map(String.init) ?? "-")", "result": "\(comparison.outcome.name)",
            "latency_delta_us": "\(latencyDeltaMicros)",
        ]
        if comparison.outcome.isMismatch {
            logger.warning("shadow read mismatch: canary halted, reads stay on the old owners", metadata: metadata)
        } else {
            logger.debug("shadow read", metadata: metadata)
        }
    }

    /// A new-owner read that failed: the client is answered by the old owner regardless.
    func recordError(_ error: any Error) {
        counters["error"]?.increment()
        state.withLock { $0.stats.errors += 1 }
        logger.warning("shadow read failed on the new owner", metadata: ["error": "\(error)"])
    }
}
