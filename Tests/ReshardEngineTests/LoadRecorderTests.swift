import ReshardCore
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
