import Foundation
import ReshardCore
import ReshardStore
import Testing

@testable import ReshardEngine

/// The backfill/CDC race of the field, forced on real SQLite shards: the copy reads old rows,
/// client writes and a delete overtake it and reach the target through the changelog first,
/// then the stale copy lands. The newest write must win, and the delete must stay a delete.
@Suite struct BackfillRaceTests {
    @Test func aStaleCopyLosesToTheChangesThatOvertookIt() async throws {
        let fixture = try await RouterFixture.make(shards: 2)
        defer { fixture.remove() }
        let router = fixture.router
        _ = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        let table = TableName("kv")!
        try await fixture.addShard("s3")
        // Move the whole range of shard s1's first assignment; pick keys that fall in it.
        let s1 = ShardID("s1")!
        let range = try #require(router.shardMap.assignments.first { $0.shard == s1 }).range
        let keys = (0..<2_000).map { "k\($0)" }.filter { range.contains(KeyHash.of($0)) }.prefix(3)
        try #require(keys.count == 3)
        let (updated, deleted, untouched) = (keys[keys.startIndex], keys[keys.startIndex + 1], keys[keys.startIndex + 2])
        for key in keys { _ = try await router.put(table: "kv", pk: key, body: Array(#"{"v":1}"#.utf8)) }

        let plan = try MigrationPlanner.plan(
            .moveRange(range, to: ShardID("s3")!), current: router.shardMap, registered: Set(router.registeredShards))
        let source = try fixture.openShard("s1")
        let target = try fixture.openShard("s3")
        try await target.ensureTable(table)
        let stream = ChangeStreamID("m_race")!
        let start = try await source.openChangeStream(stream)  // opened before the copy, as in `preparing`
        let backfill = Backfill(source: source, target: target)
        let stores: [ShardID: any ShardStore] = [s1: source, ShardID("s3")!: target]
        let applier = ChangeApplier(plan: plan, stream: stream, batch: 100, stores: FixedStores(stores: stores, tableNames: [table]))

        // 1. The copy reads the old rows.
        let stale = try await backfill.read(table: table, range: range, after: nil, limit: 1_000)
        #expect(Set(stale.map(\.pk)).isSuperset(of: keys))
        // 2. Clients overtake it.
        let newer = try await router.put(table: "kv", pk: updated, body: Array(#"{"v":2}"#.utf8))
        let tombstone = try await router.delete(table: "kv", pk: deleted, shardKey: nil)
        // 3. The changelog delivers the new versions to the target first.
        _ = try await applier.tail(.forward, shard: s1, after: start, through: nil, now: 0)
        // 4. The stale copy lands late, twice (a redone chunk after a crash).
        try await backfill.write(stale)
        try await backfill.write(stale)

        #expect(try await target.get(table: table, pk: updated)?.version == newer.version)
        #expect(try await target.get(table: table, pk: updated)?.body == #"{"v":2}"#)
        let gone = try #require(try await target.get(table: table, pk: deleted))
        #expect(gone.isDeleted && gone.version == tombstone.version)
        #expect(try await target.get(table: table, pk: untouched) == (try await source.get(table: table, pk: untouched)))
        // Both sides agree on the moving range, row for row.
        #expect(try await target.summary(table: table, range: range) == (try await source.summary(table: table, range: range)))
    }
}
