import Logging
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

@testable import ReshardEngine

/// The cutover's dry-run twin walks the same protocol as the live one, reports each action in
/// order with sorted detail, and changes nothing.
@Suite struct CutoverDryRunTests {
    @Test func theDryRunReportsEveryStepInOrderAndChangesNothing() async throws {
        let ids = (1...3).compactMap { ShardID("s\($0)") }
        let current = try RingPlacement(virtualNodes: 4).shardMap(for: Array(ids.prefix(2)), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(ids[2]), current: current, registered: Set(ids), virtualNodes: 4)
        let stores = Dictionary(uniqueKeysWithValues: ids.map { ($0, MemoryShardStore(shardID: $0)) })
        let directory = FixedStores(stores: stores, tableNames: [])
        let dryRun = CutoverDryRun(stores: directory)
        let metadata = MemoryMetadataStore()
        try await metadata.publish(current, replacing: nil)
        var machine = MigrationStateMachine(id: "m1", plan: plan, tables: [TableName("t")!], settings: MigrationSettings(canarySteps: []))
        machine.on(.start, now: 0)
        machine.on(.prepared(positions: [:]), now: 0)
        for task in machine.copies.indices { machine.on(.chunkCopied(task: task, last: nil, rows: 0, done: true), now: 0) }
        for source in plan.sources { machine.on(.tailed(.forward, shard: source, position: 0, backlog: 0, lagMillis: 0), now: 1) }
        machine.on(.verified(VerificationReport(at: 1)), now: 1)
        #expect(machine.phase == .cuttingOver)

        let worker = MigrationWorker(
            id: "m1", plan: plan, stores: directory, routers: NoRouters(), metadata: metadata, tailBatch: 10, cutover: dryRun)
        var now: UInt64 = 2
        while machine.phase == .cuttingOver {
            let work = machine.nextRound(now: now)
            var events: [MigrationEvent] = []
            for item in work { events.append(await worker.perform(item, now: now) { _ in }) }
            machine.finish(round: events, now: now)
            now += 1
        }
        let report = dryRun.report
        #expect(report.count == 1 + plan.sources.count + plan.targets.count + 2)
        #expect(report.first?.hasPrefix("hold writes to \(plan.moves.count) range(s) in every router until generation 2") == true)
        // One line per shard of the fence step, in shard order.
        let fenced = report.dropFirst().prefix(ids.count).map { line in line.split(separator: " ").first { $0.hasPrefix("s") } ?? "" }
        #expect(fenced == fenced.sorted())
        #expect(report.contains { $0.hasPrefix("fence s1 at generation 2") })
        #expect(report.contains("read the changelog position of s3 (0)"))
        #expect(report[report.count - 2] == "publish shard map generation 2 over 3 shard(s)")
        #expect(report.last == "release held writes to the owners of the current map")
        // Nothing happened: no fence on any shard, the map still generation 1.
        for store in stores.values { #expect(try await store.fences().isEmpty) }
        #expect(try await metadata.currentShardMap()?.generation == 1)
    }
}

/// Routers that do nothing: the dry run never reaches them.
private struct NoRouters: RouterControl {
    func publishDirective(_ change: (inout RouterDirective) -> Void) async throws {}
    func releaseHeldWrites() {}
    func takeWritePauses() -> PauseSummary { PauseSummary(count: 0, p50Millis: 0, p99Millis: 0, maxMillis: 0) }
    func adopt(_ map: ShardMap) -> Bool { false }
    func adoptLayout(_ table: TableDefinition) -> Bool { false }
    func refreshShardMap() async throws -> Bool { false }
    var foregroundP99Micros: UInt64? { nil }
    func shadowReads(migration: String) async throws -> [(router: String, stats: ShadowReads.Stats)] { [] }
    func servedReads(migration: String) async throws -> [(router: String, stats: ServedReads.Stats)] { [] }
}
