import ReshardCore
import ReshardEngine
import ReshardStore
import Synchronization

/// Routers, clients and shards of one simulated run, around the production migrator. The shards
/// are the test kit's in-memory stores; before each of the migrator's store operations the world
/// may run client operations (a copy's read and write can be overtaken), move the clock on (a
/// slow shard), fail the operation, or kill the migrator's process. Everything is drawn from one
/// seeded generator and runs on one logical thread, so a seed replays exactly.
public final class SimWorld: Sendable {
    /// A router: a possibly stale shard map, its clock, and the writes it holds while a cutover
    /// is under way. Router 0 lives in the migrator's process and dies with it; router 1 is
    /// another process, which hears notices only sometimes and otherwise learns from fences and
    /// its periodic re-read.
    struct Router {
        var map: ShardMap
        var clock = HybridLogicalClock()
        /// How far this router's wall clock runs behind: a lagging clock proposes versions below
        /// rows other routers wrote moments ago, which only the version rule keeps in order.
        var skewMillis: UInt64 = 0
        var held: [HashRange] = []
        var parked: [Op] = []
        var hearsNotices: Bool
        /// The routes (strategy modes, canary) of the migration, as it last followed the directive.
        var routes: RouteDirective?
    }

    struct Op: Hashable {
        let table: TableName
        let pk: String
        let body: String?
    }

    struct Key: Hashable {
        let table: TableName
        let pk: String
    }

    /// The last acknowledged write of a key: its version and body (nil: deleted).
    struct Acked {
        let version: UInt64
        let body: String?
        /// The key's hash, kept so the checks after every step need not hash it again.
        let hash: UInt64
    }

    /// A broken invariant, or a run that made no progress.
    public struct Violation: Error, CustomStringConvertible {
        /// What broke, where.
        public let description: String
    }

    /// A killed process: everything it still tries fails.
    struct Crash: Error {}

    /// How often each fault strikes a store operation of the migrator, per thousand.
    public struct Faults: Sendable {
        /// Client operations run first.
        public var interleave: Int
        /// The clock jumps: the shard was slow.
        public var slow: Int
        /// The operation fails (and is retried by the machine).
        public var fail: Int
        /// The migrator's process dies.
        public var crash: Int

        /// The default mix.
        public init(interleave: Int = 250, slow: Int = 20, fail: Int = 8, crash: Int = 8) {
            self.interleave = interleave
            self.slow = slow
            self.fail = fail
            self.crash = crash
        }
    }

    struct State {
        var random: SeededRandom
        var routers: [Router]
        var acked: [Key: Acked] = [:]
        /// Keys acknowledged since the last check of every key.
        var recentlyAcked: Set<Key> = []
        /// Acknowledgements so far.
        var acks = 0
        var directive = RouterDirective()
        var crashed = false
        /// A row of a moving range whose new copy was corrupted on purpose; shadow reads of it
        /// are expected to mismatch, and verification must repair it.
        var planted: Key?
        var shadow = ShadowReads.Stats()
        /// What the routers' served reads reported; the epoch they were sent back at.
        var served = ServedReads.Stats()
        var servedSentBackEpoch: Int?
        var p99Micros: UInt64 = 1_000
        var coverage = Coverage()
        var violation: String?
        /// What the last full invariant check saw.
        var checked: Checked?
    }

    /// Everything the invariant checks read, in summary: the same summary means the same
    /// verdict, so an unchanged world is not checked again.
    struct Checked: Equatable {
        var map: UInt64
        var routerMaps: [UInt64]
        var storeEdits: [Int]
        var acked: Int
    }

    /// What a run exercised, so passing means something.
    public struct Coverage: Sendable {
        /// Client writes and deletes a shard took.
        public var ackedWrites = 0
        /// Client writes a fence refused.
        public var fencedWrites = 0
        /// Client reads checked against the acknowledged writes.
        public var reads = 0
        /// Canary shadow reads, and those that found the planted corruption.
        public var shadowReads = 0
        public var mismatches = 0
        /// Kills of the migrator's process.
        public var crashes = 0
        /// Store operations failed on purpose.
        public var injectedFailures = 0
        /// Client operations run in the middle of a migrator's round.
        public var interleavedOps = 0
        /// `dual_write`'s second writes the new owner took, and those that failed.
        public var secondWrites = 0
        public var failedSecondWrites = 0
        /// Failed second writes queued for the migrator's retries.
        public var queuedSecondWrites = 0
        /// Queued second writes the migrator retried.
        public var retriedSecondWrites = 0
        /// `traffic_replay`'s recorded writes.
        public var recordedWrites = 0
        /// Rows copied onto a new owner by a write or read after a switch that came first, and
        /// reads the old owner answered then.
        public var copiedRows = 0
        public var oldOwnerReads = 0
        /// Reads a new owner answered alone while reads moved step by step, and times the reads
        /// were sent back (on purpose, in `canaryHalt`).
        public var servedReads = 0
        public var readsSentBack = 0

        /// Nothing yet.
        public init() {}

        /// Adds another run's figures.
        public mutating func add(_ other: Coverage) {
            ackedWrites += other.ackedWrites
            fencedWrites += other.fencedWrites
            reads += other.reads
            shadowReads += other.shadowReads
            mismatches += other.mismatches
            crashes += other.crashes
            injectedFailures += other.injectedFailures
            interleavedOps += other.interleavedOps
            secondWrites += other.secondWrites
            failedSecondWrites += other.failedSecondWrites
            queuedSecondWrites += other.queuedSecondWrites
            retriedSecondWrites += other.retriedSecondWrites
            recordedWrites += other.recordedWrites
            copiedRows += other.copiedRows
            oldOwnerReads += other.oldOwnerReads
            servedReads += other.servedReads
            readsSentBack += other.readsSentBack
        }
    }

    let clock: ManualClock
    let stores: [ShardID: MemoryShardStore]
    let metadata: MemoryMetadataStore
    let state: Mutex<State>
    let faults: Faults
    let tables = ["t", "u"].compactMap(TableName.init)
    let keys: [String]
    private let hooks: Hooks

    /// Lets the stores, built before the world, call back into it.
    final class Hooks: Sendable {
        let world = Mutex<(@Sendable (ShardID, MemoryShardStore.Operation) async throws -> Void)?>(nil)
        func call(_ shard: ShardID, _ operation: MemoryShardStore.Operation) async throws {
            try await world.withLock { $0 }?(shard, operation)
        }
    }

    init(seed: UInt64, shards: [ShardID], map: ShardMap, keyCount: Int, faults: Faults, mutations: Set<MemoryShardStore.Mutation>)
        async throws
    {
        let clock = ManualClock(millis: 1_700_000_000_000)
        let hooks = Hooks()
        self.hooks = hooks
        self.clock = clock
        self.faults = faults
        keys = (0..<keyCount).map { "k\($0)" }
        stores = Dictionary(
            uniqueKeysWithValues: shards.map { id in
                (
                    id,
                    MemoryShardStore(
                        shardID: id, wallMillis: { clock.wallMillis }, faults: { try await hooks.call($0, $1) }, mutations: mutations)
                )
            })
        var skew = SeededRandom(seed: seed ^ 0x5eed)
        state = Mutex(
            State(
                random: SeededRandom(seed: seed),
                routers: [
                    Router(map: map, hearsNotices: true),
                    Router(map: map, skewMillis: skew.next() % 3_000, hearsNotices: false),
                ]))
        let crashed = CrashFlag()
        metadata = MemoryMetadataStore(wallMillis: { clock.wallMillis }, faults: { _ in if crashed.isSet { throw Crash() } })
        crashFlag = crashed
        try await metadata.publish(map, replacing: nil)
        for store in stores.values { for table in tables { try await store.ensureTable(table) } }
        hooks.world.withLock { $0 = { [weak self] shard, operation in try await self?.beforeStoreOperation(shard, operation) } }
    }

    /// Mirrors `State.crashed` for the metadata store's hook, which must not take the world's lock
    /// (it may be called while the world holds it).
    final class CrashFlag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set(_ crashed: Bool) { value.withLock { $0 = crashed } }
    }
    let crashFlag: CrashFlag

    var crashed: Bool { crashFlag.isSet }

    func random(_ bound: UInt64) -> UInt64 { state.withLock { $0.random.next() % bound } }

    // MARK: Faults

    /// Called by a store before each of the migrator's operations on it.
    private func beforeStoreOperation(_ shard: ShardID, _ operation: MemoryShardStore.Operation) async throws {
        // The other items of the round may run first.
        await SeededScheduler.yield()
        if crashed { throw Crash() }
        let roll = random(1_000)
        var bound = UInt64(faults.interleave)
        if roll < bound {
            // Clients overtake the migrator between two of its operations.
            let count = 1 + random(3)
            for _ in 0..<count { clientStep(router: Int(random(2))) }
            state.withLock { $0.coverage.interleavedOps += Int(count) }
            return
        }
        bound += UInt64(faults.slow)
        if roll < bound {
            clock.advance(by: 10 + random(60))
            return
        }
        bound += UInt64(faults.fail)
        if roll < bound {
            state.withLock { $0.coverage.injectedFailures += 1 }
            throw StoreError.backend("injected failure of \(operation.rawValue) on \(shard)")
        }
        bound += UInt64(faults.crash)
        if roll < bound {
            crash()
            throw Crash()
        }
    }

    /// The migrator's process dies: its router's holds and parked writes go (their clients got
    /// errors), and nothing it still does lands.
    func crash() {
        crashFlag.set(true)
        state.withLock { $0.coverage.crashes += 1 }
    }

    /// The process comes back: its router starts from the metadata and the directive.
    func restart() {
        crashFlag.set(false)
        let map = metadata.current
        state.withLock { state in
            state.routers[0].held = []
            state.routers[0].parked = []
            if let map { state.routers[0].map = map }
        }
        follow(router: 0)
    }
}
