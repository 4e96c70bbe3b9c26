import Foundation
import ReshardAPI
import Testing

@testable import reshard

/// What `reshard status`, `migrate list`, `migrate set` and `shard list` print, and their `--json`.
@Suite struct StatusTextTests {
    static let shards = [
        API.ShardInfo(id: "s1", backend: "sqlite", address: "s1.sqlite", ranges: 4, fraction: 0.5, rows: 10, changeCapture: "triggers"),
        API.ShardInfo(
            id: "s2", backend: "postgres", address: "postgres://u@h/d", ranges: 4, fraction: 0.5, rows: 12,
            changeCapture: "logical decoding (wal_level = logical)"),
        API.ShardInfo(id: "s3", backend: "sqlite", address: "s3.sqlite", ranges: 0, fraction: 0, rows: 0, changeCapture: "triggers"),
    ]
    static let cluster = API.Cluster(generation: 3, shards: shards, tables: [], ranges: [])

    @Test func statusNamesTheCaptureAndTheActiveMigration() {
        let active = API.MigrationStatus.detail(WatchRendererTests.detail(phase: "copying"))
        let text = StatusTable.render(Self.cluster, url: "http://127.0.0.1:7420", active: active)
        #expect(text.contains("capture    s2: logical decoding (wal_level = logical); s1 s3: triggers"), "\(text)")
        #expect(text.contains("migration  m1 (add_shard): copying, 500 of 1000 rows copied (50.0 %)"), "\(text)")
        let idle = StatusTable.render(Self.cluster, url: "http://127.0.0.1:7420")
        #expect(idle.contains("migration  none active"), "\(idle)")
        let unknown = API.ShardInfo(id: "s9", backend: "sqlite", address: "a", ranges: 0, fraction: 0, rows: 0)
        #expect(StatusTable.captureLine([unknown]) == nil)
    }

    @Test func theActiveMigrationIsTheLatestThatHasNotEnded() {
        func summary(_ id: String, _ phase: String) -> API.MigrationSummary {
            API.MigrationSummary(id: id, kind: "rebalance", phase: phase, moves: 1, rowsCopied: 0, rowsEstimated: nil, error: nil)
        }
        #expect(StatusTable.activeMigration(API.MigrationList(migrations: [summary("m1", "done"), summary("m2", "rolled_back")])) == nil)
        let failed = API.MigrationList(migrations: [summary("m1", "done"), summary("m2", "failed")])
        #expect(StatusTable.activeMigration(failed)?.id == "m2")
    }

    @Test func theStatusDocumentIsTheAPIsDocumentsSideBySide() throws {
        let idle = try WireJSON.text(StatusDocument(cluster: Self.cluster, activeMigration: nil))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(idle.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["cluster", "active_migration"])
        #expect(object["active_migration"] is NSNull)
        let cluster = try JSONSerialization.data(withJSONObject: try #require(object["cluster"]))
        #expect(try API.decode(API.Cluster.self, from: cluster) == Self.cluster)
        // The same value always prints the same text: keys sorted.
        #expect(idle == (try WireJSON.text(StatusDocument(cluster: Self.cluster, activeMigration: nil))))
        let activeAt = try #require(idle.range(of: "\"active_migration\""))
        let clusterAt = try #require(idle.range(of: "\"cluster\""))
        #expect(activeAt.lowerBound < clusterAt.lowerBound)
    }

    @Test func theListShowsStartAndEndInUTC() {
        let list = API.MigrationList(migrations: [
            API.MigrationSummary(
                id: "m1", kind: "add_shard", phase: "done", moves: 3, rowsCopied: 40, rowsEstimated: 40, error: nil,
                startedMs: 1_796_598_150_103, endedMs: 1_796_598_160_000),
            API.MigrationSummary(
                id: "m2", kind: "rebalance", phase: "failed", moves: 1, rowsCopied: 5, rowsEstimated: nil, error: "shard s2 down",
                startedMs: 1_796_598_170_000, endedMs: nil),
        ])
        let lines = MigrationText.list(list).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("ID") && lines[0].contains("STARTED") && lines[0].contains("ENDED"))
        #expect(lines[1].contains("2026-12-06T") && lines[1].contains("40 of 40"), "\(lines)")
        #expect(lines[2].contains(" - ") && lines[2].hasSuffix("shard s2 down"), "\(lines)")
        #expect(MigrationText.list(API.MigrationList(migrations: [])) == "no migrations yet")
    }

    @Test func setSaysWhatIsInForce() {
        let baking = API.MigrationSettingsChanged(id: "m1", phase: "baking", maxRowsPerSecond: 500, bakeMs: 60_000, bakeUntilMs: 100_000)
        #expect(
            SetSettings.describe(baking, nowMillis: 58_000)
                == "migration m1 (baking): at most 500 copied rows per second, a 1 min 00 s bake, 42 s left")
        let copying = API.MigrationSettingsChanged(id: "m1", phase: "copying", maxRowsPerSecond: nil, bakeMs: 0, bakeUntilMs: nil)
        #expect(SetSettings.describe(copying, nowMillis: 0) == "migration m1 (copying): no copy ceiling, a 0 s bake")
    }

    @Test func shardListIsATable() {
        let lines = ShardList.render(API.ShardList(shards: Self.shards)).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("SHARD") && lines[0].contains("CAPTURE"))
        #expect(lines[2].contains("logical decoding") && lines[2].hasSuffix("postgres://u@h/d"))
        #expect(ShardList.render(API.ShardList(shards: [])) == "no shards")
    }
}
