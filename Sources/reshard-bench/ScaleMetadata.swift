import Foundation
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// A map's cost in the real metadata store: publishing it (as a cutover does, the event with its
/// moves included), a router following it (`refreshShardMap`: read, decode, install), and saving
/// the migration's journal that carries it (its plan once, then the rest every copy round).
struct ScaleMetadata {
    /// The medians for one map on one metadata backend.
    struct Figures: Codable, Sendable {
        /// The plan whose maps were published.
        let plan: String
        let metadata: String
        let ranges: Int
        let samples: Int
        let publishMillis: Double
        let pickupMillis: Double
        /// Writing the whole map after the hold (`snapshotShardMaps`): the publish kept its moves.
        let snapshotMillis: Double
        /// The journal's plan (both maps), written by a migration's first save.
        let planBytes: Int
        let planSaveMillis: Double
        /// The rest of the journal (the copy tasks and progress), written by every copy round.
        let journalBytes: Int
        let journalSaveMillis: Double
    }

    let store: any MetadataStore
    let router: ShardRouter
    private var generation: UInt64 = 1

    /// Registers `shards` shards (opened as in-memory stores: no shard I/O is measured), publishes
    /// `first` as generation 1 and starts a router on `store`.
    static func open(_ store: any MetadataStore, shards: Int, first: ShardMap) async throws -> ScaleMetadata {
        for id in try ScaleMaps.ids(shards) {
            try await store.addShard(ShardRecord(id: id, location: .sqlite(path: "unused/\(id.rawValue).sqlite")))
        }
        try await store.publish(first.withGeneration(1), replacing: nil)
        let router = try await ShardRouter(
            metadata: store, openStore: { MemoryShardStore(shardID: $0.id) }, metricsFactory: NOOPMetricsHandler.instance,
            logger: benchLogger())
        return ScaleMetadata(store: store, router: router)
    }

    /// Publishes the plan's target and source in turn, `samples` times, each at the next
    /// generation and replacing the last, has the router follow each, and takes the snapshot a
    /// cutover takes after its hold; then saves the journal of a migration of `plan` `samples`
    /// times, each with its plan (a migration's first save) and without (every later one).
    mutating func measure(_ name: String, _ plan: MigrationPlan, backend: String, samples: Int) async throws -> Figures {
        var publishes: [Double] = []
        var pickups: [Double] = []
        var snapshots: [Double] = []
        for index in 0..<samples {
            let map = (index % 2 == 0 ? plan.target : plan.source).withGeneration(generation + 1)
            var started = ContinuousClock.now
            try await store.publish(map, replacing: generation)
            publishes.append(seconds(since: started) * 1_000)
            generation += 1
            started = ContinuousClock.now
            guard try await router.refreshShardMap() else { throw BenchError("the router did not take generation \(generation)") }
            pickups.append(seconds(since: started) * 1_000)
            started = ContinuousClock.now
            try await store.snapshotShardMaps()
            snapshots.append(seconds(since: started) * 1_000)
        }
        let table = try TableName(benchTable).orThrow("table name")
        let machine = MigrationStateMachine(id: "scale-\(generation)", plan: plan, tables: [table], settings: MigrationSettings())
        var writer = MigrationJournal.Writer()
        let journal = try writer.encode(machine)
        var planSaves: [Double] = []
        var saves: [Double] = []
        for _ in 0..<samples {
            var started = ContinuousClock.now
            try await store.saveMigration(id: machine.id, progress: journal.progress, plan: journal.plan)
            planSaves.append(seconds(since: started) * 1_000)
            started = ContinuousClock.now
            try await store.saveMigration(id: machine.id, progress: journal.progress, plan: nil)
            saves.append(seconds(since: started) * 1_000)
        }
        return Figures(
            plan: name, metadata: backend, ranges: plan.target.assignments.count, samples: samples, publishMillis: median(publishes),
            pickupMillis: median(pickups), snapshotMillis: median(snapshots), planBytes: journal.plan.utf8.count,
            planSaveMillis: median(planSaves), journalBytes: journal.progress.utf8.count, journalSaveMillis: median(saves))
    }

    /// Runs `body` on SQLite metadata in a fresh temporary folder, removed afterwards.
    static func withSQLite<T>(shards: Int, first: ShardMap, _ body: (inout ScaleMetadata) async throws -> T) async throws -> T {
        let folder = NSTemporaryDirectory() + "reshard-bench-scale-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteMetadataStore(path: folder + "/meta.sqlite")
        do {
            var metadata = try await open(store, shards: shards, first: first)
            let result = try await body(&metadata)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }

    /// Runs `body` on PostgreSQL metadata in a fresh database on `server`, dropped afterwards.
    static func withPostgres<T>(
        server: PostgresEndpoint, shards: Int, first: ShardMap, _ body: (inout ScaleMetadata) async throws -> T
    ) async throws -> T {
        let database = try await PostgresScratch.createDatabase(on: server, prefix: "scale")
        let store = try await PostgresMetadataStore.open(endpoint: database, logger: benchLogger())
        do {
            var metadata = try await open(store, shards: shards, first: first)
            let result = try await body(&metadata)
            await store.close()
            try? await PostgresScratch.dropDatabase(database)
            return result
        } catch {
            await store.close()
            try? await PostgresScratch.dropDatabase(database)
            throw error
        }
    }
}
