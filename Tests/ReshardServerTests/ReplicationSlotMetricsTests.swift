import Foundation
import Logging
import Metrics
import Prometheus
import ReshardCore
import ReshardServer
import ReshardStore
import ReshardTestKit
import Testing

/// The replication slots of PostgreSQL shards on `/metrics`, with the WAL each retains.
@Suite(
    .timeLimit(.minutes(2)),
    .enabled(if: ShardBackend.postgres.isAvailable, "needs a PostgreSQL server with wal_level = logical (RESHARD_PG_1: scripts/test)"))
struct ReplicationSlotMetricsTests {
    @Test func replicationSlotsAreSampledWithTheWALTheyRetain() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let cluster = try await ScratchCluster.make(
            prefix: "reshard-slots", backend: .postgres, shards: 2, metricsFactory: factory, logger: Logger(label: "test"))
        let router = cluster.router
        let s1 = try #require(ShardID("s1"))
        let store = try #require(router.store(s1))
        let stream = try #require(ChangeStreamID("metricstest"))
        do {
            _ = try await router.createTable(name: "kv", primaryKey: "id", shardKey: "id")
            _ = try await store.openChangeStream(stream)
            // Every write after the slot's restart point is WAL the slot keeps.
            for i in 0..<100 { _ = try await router.put(table: "kv", pk: "k\(i)", body: Array(#"{"v":1}"#.utf8)) }
            let sampler = ReplicationSlotSampler(router: router, factory: factory, logger: Logger(label: "test"))

            await sampler.sample()
            let open = Scrape(String(decoding: registry.emitToBuffer(), as: UTF8.self))
            let retained = open.samples.filter { $0.name == "reshard_replication_slot_retained_bytes" }
            #expect(retained.count == 1, "one slot, on s1")
            let slot = try #require(retained.first)
            #expect(slot.labels["shard"] == "s1")
            #expect(slot.labels["slot"]?.hasPrefix("reshard_metricstest_") == true)
            #expect(slot.value > 0)
            #expect(open.value("reshard_replication_slot_active", slot.labels) == 0, "nobody reads the slot between a migration's reads")
            #expect(open.value("reshard_replication_slot_sample_errors_total", [:]) == nil, "both shards answered")
            for name in try Scrape.alertMetrics() where name.hasPrefix("reshard_replication_slot_") {
                #expect(open.families.contains(name), "deploy/prometheus/alerts.yml uses \(name), which /metrics does not export")
            }

            // A closed stream's slot is gone from the server, and from the metrics at the next sample.
            try await store.closeChangeStream(stream)
            await sampler.sample()
            let closed = Scrape(String(decoding: registry.emitToBuffer(), as: UTF8.self))
            #expect(!closed.samples.contains { $0.name.hasPrefix("reshard_replication_slot_") && $0.labels["shard"] == "s1" })
        } catch {
            try? await store.closeChangeStream(stream)
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }
}
