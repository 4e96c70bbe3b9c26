import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardTestKit
import Synchronization
import Testing

@testable import ReshardEngine

/// The router's recorder: windows by wall time, top keys per shard over the current and the
/// last period, and nothing kept past them.
@Suite struct LoadRecorderTests {
    let s1 = ShardID("s1")!
    let s2 = ShardID("s2")!
    let table = TableName("t")!

    @Test func windowsAndTopKeysFollowTheClock() throws {
        let recorder = LoadRecorder()
        for index in 0..<5 {
            recorder.record(table: table, key: "a", hash: 0, shard: s1, LoadCounts(reads: 1, bytes: 10), now: 1_000 + UInt64(index))
        }
        recorder.record(table: table, key: "b", hash: .max, shard: s2, LoadCounts(writes: 1), now: 2_500)
        let (windows, keys) = recorder.report(now: 3_000)
        #expect(
            windows.completeWindows(now: 3_000).map(\.total) == [LoadCounts(), LoadCounts(reads: 5, bytes: 50), LoadCounts(writes: 1)])
        let top = try #require(keys[s1]?.top(5))
        #expect(top.map(\.key) == ["t/a"] && top.map(\.count) == [5] && top.map(\.error) == [0])
        #expect(keys[s2]?.top(5).map(\.key) == ["t/b"])

        // The next period still shows the last one; the one after, neither.
        recorder.record(table: table, key: "c", hash: 0, shard: s1, LoadCounts(reads: 1), now: 10_000)
        let next = recorder.report(now: 10_000).keys
        #expect(next[s1]?.top(5).map(\.key) == ["t/a", "t/c"])
        #expect(recorder.report(now: 20_000).keys[s1]?.top(5).map(\.key) == ["t/c"])
        #expect(recorder.report(now: 30_000).keys.isEmpty)
        recorder.record(table: table, key: "d", hash: 0, shard: s1, LoadCounts(reads: 1), now: 45_000)
        #expect(recorder.report(now: 45_000).keys[s1]?.top(5).map(\.key) == ["t/d"], "periods apart: nothing carried over")
        #expect(recorder.report(now: 200_000).windows.windows.isEmpty, "a minute later the windows are gone")

        // A clock that steps back into the last period counts into the current one.
        recorder.record(table: table, key: "e", hash: 0, shard: s1, LoadCounts(reads: 1), now: 39_999)
        let stepped = try #require(recorder.report(now: 45_000).keys[s1]?.top(5))
        #expect(stepped.map(\.key) == ["t/d", "t/e"] && stepped.map(\.count) == [1, 1])
    }
}

/// Routers merge their load through the metadata store: every router's report counts, a stale
/// or damaged one is left out, and the merged view is judged up to the oldest report.
@Suite struct ClusterLoadTests {
    func router(_ fixture: RouterFixture, name: String, wall: ManualWall) async throws -> ShardRouter {
        try await ShardRouter(
            metadata: fixture.metadata, openStore: fixture.folder.opener, metricsFactory: NOOPMetricsHandler.instance,
            logger: Logger(label: "test"), name: name, wallMillis: { wall.read() })
    }

    /// `count` requests of key `key` in each second of `seconds`, against the shard owning `hash`.
    func load(_ router: ShardRouter, key: String, hash: UInt64, count: Int, seconds: Range<UInt64>) {
        let shard = router.shardMap.assignment(for: hash).shard
        for second in seconds {
            for index in 0..<count {
                router.load.record(
                    table: TableName("t")!, key: key, hash: hash, shard: shard, LoadCounts(reads: 1, bytes: 4),
                    now: second * 1_000 + UInt64(index))
            }
        }
    }

    @Test func everyRoutersReportIsMergedAndDamagedOnesAreLeftOut() async throws {
        let fixture = try await RouterFixture.make()
        defer { fixture.remove() }
        let wall = ManualWall(100_000)
        let first = try await router(fixture, name: "r1", wall: wall)
        let second = try await router(fixture, name: "r2", wall: wall)
        let third = try await router(fixture, name: "r3", wall: wall)
        let map = first.shardMap
        // The middle of each shard's widest range: a bucket no other shard shares.
        func middle(_ shard: ShardID) throws -> UInt64 {
            let widest = try #require(map.ranges(of: shard).max { $0.last - $0.start < $1.last - $1.start })
            return widest.start + (widest.last - widest.start) / 2
        }
        let hotShard = map.shards[0]
        let coolShard = map.shards[1]
        let hot = try middle(hotShard)
        let cool = try middle(coolShard)
        load(first, key: "a", hash: hot, count: 30, seconds: 100..<115)
        load(second, key: "b", hash: hot, count: 20, seconds: 100..<115)
        load(second, key: "c", hash: cool, count: 10, seconds: 100..<115)
        wall.set(115_500)
        await second.report(load: true)
        let rules = HotSpotRules(sustainedWindows: 10)

        let alone = first.loadView(rules: rules)
        #expect(alone.routers == ["r1"] && alone.report.load[hotShard] == 300)
        let merged = try await first.clusterLoadView(rules: rules)
        #expect(merged.routers == ["r1", "r2"])
        #expect(merged.report.load[hotShard] == 500 && merged.report.load[coolShard] == 100)
        #expect(Set(merged.keys[hotShard]?.top(5).map(\.key) ?? []) == ["t/a", "t/b"])

        // A damaged report (a bucket past the hash space) is left out whole; a stale one too.
        let broken = RouterReportBody(
            shadow: ShadowReads.Stats(), secondWrites: nil, served: nil,
            load: LoadSnapshot(
                asOfMillis: 115_500, windowMillis: 1_000, windows: [.init(epoch: 114, buckets: [[4_096, 1, 0, 0, 0]])], keys: [:]))
        try await fixture.metadata.saveReport(router: "r3", report: String(decoding: try JSONEncoder().encode(broken), as: UTF8.self))
        #expect(try await first.clusterLoadView(rules: rules).routers == ["r1", "r2"])
        // So is one whose windows lie far ahead of the reader's clock: merged, they would age out
        // every window the reader keeps.
        for epoch in [UInt64.max, 115 + UInt64(LoadSnapshot.reportedWindows) + 1] {
            let ahead = RouterReportBody(
                shadow: ShadowReads.Stats(), secondWrites: nil, served: nil,
                load: LoadSnapshot(
                    asOfMillis: 115_500, windowMillis: 1_000, windows: [.init(epoch: epoch, buckets: [[1, 1, 0, 0, 0]])], keys: [:]))
            try await fixture.metadata.saveReport(router: "r3", report: String(decoding: try JSONEncoder().encode(ahead), as: UTF8.self))
            let view = try await first.clusterLoadView(rules: rules)
            #expect(view.routers == ["r1", "r2"] && view.report.load[hotShard] == 500, "epoch \(epoch)")
        }
        load(third, key: "d", hash: cool, count: 5, seconds: 100..<115)
        await third.report(load: true)
        #expect(try await first.clusterLoadView(rules: rules).routers == ["r1", "r2", "r3"])
        wall.set(115_500 + LoadSnapshot.staleAfterMillis)
        #expect(try await first.clusterLoadView(rules: rules).routers == ["r1"], "a report a minute old is from a router that stopped")
    }
}
