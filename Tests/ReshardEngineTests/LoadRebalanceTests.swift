import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardTestKit
import Synchronization
import Testing

@testable import ReshardEngine

/// The load-aware kinds over a real router: the routers' merged windows are weighed, the plan's
/// balance predicted, a hot key refused, and the hot-spot finding run as `split_hot_range`.
@Suite struct LoadRebalanceTests {
    /// A router whose wall clock the test sets, so twelve seconds of load take no time.
    func router(_ fixture: RouterFixture, wall: ManualWall) async throws -> ShardRouter {
        try await ShardRouter(
            metadata: fixture.metadata, openStore: fixture.folder.opener, metricsFactory: NOOPMetricsHandler.instance,
            logger: Logger(label: "test"), name: "r1", wallMillis: { wall.read() })
    }

    /// Zipf (s = 1.1) requests over 2,000 keys each second of `seconds`, the hottest half of the
    /// ranks in buckets `hot` owns; `celebrity` adds one key with that share of all requests.
    func zipf(_ router: ShardRouter, hot: ShardID, seconds: Range<UInt64>, celebrity: Double = 0) {
        let map = router.shardMap
        var owned: [UInt16] = []
        var others: [UInt16] = []
        for bucket in 0..<UInt16(LoadWindows.bucketCount) {
            let range = LoadWindows.range(of: bucket)
            if map.owner(of: range.start) == hot && map.owner(of: range.last) == hot { owned.append(bucket) } else { others.append(bucket) }
        }
        let keys = 2_000
        let norm = (1...keys).reduce(0.0) { $0 + 1 / pow(Double($1), 1.1) }
        let perSecond = 20_000.0
        for second in seconds {
            for rank in 1...keys {
                let pool = rank <= keys / 2 ? owned : others
                let bucket = pool[(rank * 7_919) % pool.count]
                let count = UInt64((perSecond / pow(Double(rank), 1.1) / norm).rounded())
                guard count > 0 else { continue }
                router.load.record(
                    table: TableName("kv")!, key: "k\(rank)", hash: LoadWindows.range(of: bucket).start + 1,
                    shard: map.owner(of: LoadWindows.range(of: bucket).start),
                    LoadCounts(reads: count), now: second * 1_000)
            }
            if celebrity > 0, let bucket = owned.first {
                let count = UInt64(perSecond * celebrity / (1 - celebrity))
                router.load.record(
                    table: TableName("kv")!, key: "celebrity", hash: LoadWindows.range(of: bucket).start, shard: hot,
                    LoadCounts(reads: count),
                    now: second * 1_000 + 1)
            }
        }
    }

    @Test func aLoadRebalanceIsPlannedFromTheRoutersLoadToWithinTenPercent() async throws {
        let fixture = try await RouterFixture.make()
        defer { fixture.remove() }
        let wall = ManualWall(100_000)
        let router = try await router(fixture, wall: wall)
        let manager = MigrationManager(router: router, metadata: fixture.metadata, logger: Logger(label: "test"))
        let hot = router.shardMap.shards[2]

        // No load yet: nothing to weigh, and no hot range to split.
        await #expect(throws: RouterError.self) { try await manager.preview(.rebalanceLoad(LoadMix(.requests))) }
        await #expect(throws: RouterError.self) { try await manager.hotRangeKind(signal: .requests) }

        zipf(router, hot: hot, seconds: 100..<112)
        wall.set(112_000)
        let preview = try await manager.preview(.rebalanceLoad(LoadMix(.requests)))
        let balance = try #require(preview.balance)
        #expect(balance.routers == ["r1"] && balance.windows == 10)
        #expect(balance.maxOverMean > 1.8, "one shard takes most of the load: \(balance.maxOverMean)")
        #expect(balance.predictedMaxOverMean <= 1.10, "predicted \(balance.predictedMaxOverMean)")
        #expect(preview.plan.kind == .rebalanceLoad(LoadMix(.requests)) && !preview.plan.moves.isEmpty)
        #expect(preview.plan.sources == [hot], "only the hot shard gives")

        // The finding's one move, as split_hot_range: from the hot shard, planned and predicted.
        let split = try await manager.hotRangeKind(signal: .requests)
        guard case .splitHotRange(_, let from, _) = split else {
            Issue.record("expected a split, got \(split)")
            return
        }
        #expect(from == hot)
        let splitPreview = try await manager.preview(split)
        #expect(splitPreview.plan.moves.count == 1 && splitPreview.plan.kind.name == "split_hot_range")
        #expect(try #require(splitPreview.balance).predictedMaxOverMean < balance.maxOverMean)
    }

    @Test func aCelebrityKeyIsReportedNotSplit() async throws {
        let fixture = try await RouterFixture.make()
        defer { fixture.remove() }
        let wall = ManualWall(100_000)
        let router = try await router(fixture, wall: wall)
        let manager = MigrationManager(router: router, metadata: fixture.metadata, logger: Logger(label: "test"))
        let hot = router.shardMap.shards[0]
        zipf(router, hot: hot, seconds: 100..<112, celebrity: 0.5)
        wall.set(112_000)
        for attempt in [
            { try await manager.preview(.rebalanceLoad(LoadMix(.requests))) },
            { try await manager.preview(try await manager.hotRangeKind(signal: .requests)) },
        ] {
            do {
                _ = try await attempt()
                Issue.record("a celebrity key was planned around")
            } catch let error as RouterError {
                #expect(
                    error.code == "hot_key" && error.message.contains("kv/celebrity") && error.message.contains("salt the key"), "\(error)")
            }
        }
    }
}

extension LoadRebalanceTests {
    /// With auto-rebalance on, a sustained hot spot starts a load rebalance on its own, through
    /// the normal admission and gates: it waits at its gate, and no second one is started.
    @Test func autoRebalanceStartsOneLoadRebalanceThatWaitsAtItsGate() async throws {
        let fixture = try await RouterFixture.make()
        defer { fixture.remove() }
        let wall = ManualWall(100_000)
        let router = try await router(fixture, wall: wall)
        let manager = MigrationManager(router: router, metadata: fixture.metadata, logger: Logger(label: "test"))
        var settings = MigrationSettings()
        settings.gates = [.copying]
        let auto = Task { await manager.autoRebalance(AutoRebalancePolicy(), settings: settings, every: .milliseconds(20)) }
        defer { auto.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await manager.list().isEmpty, "no load, no migration")

        zipf(router, hot: router.shardMap.shards[1], seconds: 100..<112)
        wall.set(112_000)
        var started: [MigrationStatus] = []
        for _ in 0..<500 where started.isEmpty {
            try await Task.sleep(for: .milliseconds(20))
            started = try await manager.list()
        }
        let migration = try #require(started.first)
        #expect(migration.machine.plan.kind == .rebalanceLoad(LoadMix(.requests)))
        for _ in 0..<500 where (await manager.status(migration.machine.id))?.machine.awaitingApproval == nil {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await manager.status(migration.machine.id)?.machine.awaitingApproval == .copying)
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await manager.list().count == 1, "one at a time")
        auto.cancel()
        await manager.stopAll()
    }
}

/// A wall clock a test sets.
final class ManualWall: Sendable {
    private let millis: Mutex<UInt64>
    init(_ start: UInt64) { millis = Mutex(start) }
    func read() -> UInt64 { millis.withLock { $0 } }
    func set(_ value: UInt64) { millis.withLock { $0 = value } }
}
