import ReshardAPI
import Testing

@testable import reshard

/// `reshard load` in words: the table, the finding, and with `--propose` the command to run.
@Suite struct LoadTextTests {
    func report(_ finding: API.LoadFinding, predicted: Double?) -> API.LoadReport {
        API.LoadReport(
            router: "r1", routers: ["r1", "r2"], windowMs: 1_000, windows: 10, signal: "requests", generation: 7,
            shards: [
                API.ShardLoad(shard: "s1", load: 900, share: 0.75, topKeys: [API.TopKey(key: "kv/a", count: 120, error: 20)]),
                API.ShardLoad(shard: "s2", load: 300, share: 0.25, topKeys: []),
            ], maxOverMean: 1.5, predictedMaxOverMean: predicted, finding: finding)
    }

    @Test func aMoveIsProposedAsTheCommandThatRunsIt() {
        let move = API.LoadFinding(
            kind: "move", shard: "s1", range: API.RangeAssignment(start: "0x0000000000000000", end: "0x1000000000000000", shard: "s2"),
            advice: "move it")
        let text = LoadText.render(report(move, predicted: 1.0), propose: true)
        #expect(text.contains("routers r1, r2, shard map generation 7"))
        #expect(text.contains("kv/a (100-120)") && text.contains("75.0 %"))
        #expect(text.contains("1.50x the mean now, 1.00x predicted after"))
        #expect(text.contains("reshard migrate move-range --start 0x0000000000000000 --end 0x1000000000000000 --to s2"))
        #expect(!LoadText.render(report(move, predicted: 1.0), propose: false).contains("proposal"))
    }

    @Test func aHotKeyIsReportedAndNothingProposed() {
        let hot = API.LoadFinding(
            kind: "hot_key", shard: "s1", key: "kv/a", share: 0.4, advice: "cache it, replicate its reads, or salt the key")
        let text = LoadText.render(report(hot, predicted: nil), propose: true)
        #expect(text.contains("finding: hot_key: cache it") && text.contains("proposal: none (hot_key)"))
        #expect(!text.contains("migrate move-range"))
    }
}
