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
        let plan = API.Plan(
            kind: "rebalance", fromGeneration: 7, toGeneration: 8,
            moves: [
                API.PlanMove(start: "0x00", end: "0x10", source: "s1", target: "s2", rows: 40),
                API.PlanMove(start: "0x20", end: "0x30", source: "s1", target: "s2", rows: 2),
            ], rows: 42, bytes: 900, movedFraction: 0.1, idealFraction: 0.1, strategy: "cdc_backfill", steps: [],
            balance: API.BalancePlan(
                weights: API.LoadWeights(rows: 0, requests: 1, bytes: 0, time: 0), windows: 10, routers: ["r1", "r2"], maxOverMean: 1.5,
                predictedMaxOverMean: 1.02))
        let text = LoadText.render(report(move, predicted: 1.2), propose: true, proposal: .success(plan))
        #expect(text.contains("routers r1, r2, shard map generation 7"))
        #expect(text.contains("kv/a (100-120)") && text.contains("75.0 %"))
        #expect(text.contains("proposal: rebalance by requests: 2 ranges from s1 to s2, 42 rows"))
        #expect(text.contains("by requests 1.0 over 10 s of routers r1, r2: busiest shard 1.50x the mean now, 1.02x predicted after"))
        #expect(text.contains("  reshard migrate rebalance --signal requests"))
        #expect(text.contains("1.20x predicted after") && text.contains("reshard migrate split-hot-range --signal requests"))
        #expect(!LoadText.render(report(move, predicted: 1.0), propose: false).contains("proposal"))
        let refused = LoadText.render(report(move, predicted: 1.0), propose: true, proposal: .failure(CLIError("already_balanced")))
        #expect(refused.contains("proposal: none (the rebalance was refused: already_balanced)"))
    }

    @Test func aHotKeyIsReportedAndNothingProposed() {
        let hot = API.LoadFinding(
            kind: "hot_key", shard: "s1", key: "kv/a", share: 0.4, advice: "cache it, replicate its reads, or salt the key")
        let text = LoadText.render(report(hot, predicted: nil), propose: true)
        #expect(text.contains("finding: hot_key: cache it") && text.contains("proposal: none (hot_key)"))
        #expect(!text.contains("migrate move-range"))
    }

    @Test func weightsAreParsedStrictly() throws {
        #expect(try Rebalance.parseWeights("rows=1,requests=2.5") == API.LoadWeights(rows: 1, requests: 2.5))
        for bad in ["", "rows", "rows=", "rows=x", "rows=1,rows=2", "cpu=1", "rows=1,", "rows=inf", "rows=nan", "rows=1=2"] {
            #expect(throws: (any Error).self, "\(bad)") { try Rebalance.parseWeights(bad) }
        }
    }
}
