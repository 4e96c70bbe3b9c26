import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore
import Synchronization

/// Opens the store of a registered shard: a SQLite file or a PostgreSQL database.
public typealias ShardStoreOpener = @Sendable (ShardRecord) async throws -> any ShardStore

/// Routes every row operation to the shard that owns its key under the current shard map.
///
/// The routing state (map, tables, shards) is an immutable snapshot swapped under a mutex, so
/// the hot path takes the lock once to copy a reference and never awaits while holding it.
/// Versions come from a hybrid logical clock that observes every version a shard assigns.
public final class ShardRouter: Sendable {
    struct ShardHandle: Sendable {
        let record: ShardRecord
        let store: any ShardStore
        let metrics: ShardMetrics
    }

    struct Snapshot: Sendable {
        var map: ShardMap
        var tables: [TableName: TableDefinition]
        var shards: [ShardID: ShardHandle]
    }

    let metadata: any MetadataStore
    let openStore: ShardStoreOpener
    let metricsFactory: any MetricsFactory
    let logger: Logger
    let wallMillis: @Sendable () -> UInt64
    private let state: Mutex<Snapshot>
    private let clock = Mutex(HybridLogicalClock())
    /// Recent foreground latencies, for the migration throttle, and their per-second history.
    let latencies: LatencyWindow
    /// The 99th percentile of the router's recent shard calls, microseconds.
    public var foregroundP99Micros: UInt64? { latencies.p99Micros }
    /// The router's foreground latency per complete second since `fromSecond` (seconds since
    /// 1970; the last hour at most), oldest first, for charts.
    public func foregroundLatency(from fromSecond: UInt64 = 0) -> [LatencySecond] { latencies.seconds(from: fromSecond) }
    /// `shard`'s requests per second and p99 (microseconds) through this router, over its last
    /// few complete seconds.
    public func shardTraffic(_ shard: ShardID) -> (requestsPerSecond: Double, p99Micros: UInt64?) { latencies.recent(shard) }
    /// Holds writes of ranges that are cutting over.
    public let gate = WriteGate()
    /// The shadow reads of a migration's canary.
    public let canary: ShadowReads
    /// The second writes of a `dual_write` migration.
    public let secondWrites: SecondWrites
    /// The reads the new owners serve alone while a migration moves reads step by step.
    public let served: ServedReads
    /// How long a held write waits before it is answered 503 with Retry-After.
    public let holdTimeout: Duration
    /// Serialises admin changes (tables, shards) and metadata re-reads so two of them cannot
    /// interleave their store and metadata steps; row traffic takes it only after a fence refusal.
    let adminLock = AsyncSerialLock()
    /// This router's name among the routers sharing the metadata (its reports are filed under it).
    public let name: String
    /// Requests that met a fence above the generation they were routed by.
    let fenceMetrics: FenceMetrics
    /// This router's load per hash bucket and its most requested keys, for hot-spot reports.
    public let load = LoadRecorder()
    private let migrator = Mutex<Bool?>(nil)
    /// Whether this router's process runs the migrations: nil when it has no migrator.
    public var migratorLeader: Bool? { migrator.withLock { $0 } }
    /// Called by the process's migration manager whenever its leadership changes.
    public func noteMigrator(leading: Bool) { migrator.withLock { $0 = leading } }

    /// Loads tables, shards and the current shard map from `metadata` and opens every shard.
    /// Throws when no shard map was ever published (see `ClusterBootstrap`).
    public init(
        metadata: any MetadataStore,
        openStore: @escaping ShardStoreOpener,
        metricsFactory: any MetricsFactory,
        logger: Logger,
        holdTimeout: Duration = .seconds(2),
        name: String = "router-\(ProcessInfo.processInfo.processIdentifier)-\(UInt16.random(in: 0...UInt16.max))",
        wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }
    ) async throws {
        guard let map = try await metadata.currentShardMap() else {
            throw RouterError(.unavailable, "no_shard_map", "the metadata holds no shard map; bootstrap the cluster first")
        }
        var handles: [ShardID: ShardHandle] = [:]
        for record in try await metadata.shards() {
            handles[record.id] = ShardHandle(
                record: record,
                store: try await openStore(record),
                metrics: ShardMetrics(shard: record.id.rawValue, factory: metricsFactory)
            )
        }
        for shard in map.shards where handles[shard] == nil {
            throw RouterError(.unavailable, "unknown_shard", "the shard map names shard \(shard), which is not registered")
        }
        let tables = try await metadata.tables()
        self.metadata = metadata
        self.openStore = openStore
        self.metricsFactory = metricsFactory
        self.logger = logger
        self.wallMillis = wallMillis
        self.latencies = LatencyWindow(wallMillis: wallMillis)
        self.holdTimeout = holdTimeout
        self.name = name
        self.canary = ShadowReads(logger: logger, factory: metricsFactory)
        self.secondWrites = SecondWrites(factory: metricsFactory)
        self.served = ServedReads(logger: logger, factory: metricsFactory)
        self.fenceMetrics = FenceMetrics(factory: metricsFactory)
        self.state = Mutex(Snapshot(map: map, tables: Dictionary(uniqueKeysWithValues: tables.map { ($0.name, $0) }), shards: handles))
    }

    var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ change: (inout Snapshot) -> Void) {
        state.withLock { change(&$0) }
    }

    /// The shard map in force.
    public var shardMap: ShardMap { snapshot.map }

    /// Re-reads the shard map from the metadata store; returns whether it changed. Routers call
    /// this when a shard refuses a write with a fence, because a fence above our generation means
    /// a newer map was published that this router has not seen yet.
    @discardableResult
    public func refreshShardMap() async throws -> Bool {
        // Fenced writes call this by the hundred during a switch: only a newer map takes the lock.
        guard let latest = try await metadata.currentShardMap(), latest.generation > shardMap.generation else { return false }
        // A held gate and unopened shards need the full re-read; a plain newer map does not. The
        // directive is read with it: a strategy that switches first shows its modes before the
        // switch, so a router that adopts the new map then reads by them, even one that missed
        // every notification.
        if !gate.isHolding, latest.shards.allSatisfy({ snapshot.shards[$0] != nil }) {
            let directive = try RouterDirective.decode(try await metadata.directive())
            let adopted = adopt(latest)
            follow(directive)
            return adopted
        }
        return try await adminLock.withLock {
            let changed = try await refreshMapLocked()
            follow(try RouterDirective.decode(try await metadata.directive()))
            return changed
        }
    }

    /// Puts `map` in force if it is newer than the current one; returns whether it was. The
    /// migrator calls this right after publishing, so the cutover does not wait on a re-read of
    /// what it just wrote.
    @discardableResult
    public func adopt(_ map: ShardMap) -> Bool {
        state.withLock { current in
            guard map.generation > current.map.generation else { return false }
            current.map = map
            return true
        }
    }

    /// Puts `table`, a layout just published, in force if it is newer than the one in use;
    /// returns whether it was. The migrator calls this right after publishing a shard-key
    /// change's switch, so held writes go to the new layout without a re-read.
    @discardableResult
    public func adoptLayout(_ table: TableDefinition) -> Bool {
        state.withLock { current in
            guard (current.tables[table.name]?.layoutGeneration ?? 0) < table.layoutGeneration else { return false }
            current.tables[table.name] = table
            return true
        }
    }

    func nextVersion() -> UInt64 {
        let now = wallMillis()
        return clock.withLock { $0.next(wallMillis: now) }
    }

    func observe(_ version: UInt64) {
        clock.withLock { $0.observe(version) }
    }
}
