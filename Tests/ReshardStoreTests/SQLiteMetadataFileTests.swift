import GRDB
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// What only the SQLite metadata backend promises: several handles on one file (as several
/// processes would open) share it safely, and a file written by an older Reshard opens with the
/// schema of today.
@Suite struct SQLiteMetadataFileTests {
    /// The conformance suite's two handles on SQLite are one handle; two handles on one file
    /// are two connection pools, serialized only by the file's write lock.
    @Test func appendsThroughTwoHandlesOnOneFileGetGaplessPositionsInCommitOrder() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        let stores = [try SQLiteMetadataStore(path: path), try SQLiteMetadataStore(path: path)]
        try await expectGaplessConcurrentAppends(through: stores)
        for store in stores { await store.close() }
    }

    /// A metadata file from before the logs gains their tables when opened, keeping what it held.
    @Test func aFileFromBeforeTheLogsGainsThemWhenReopened() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        #expect(try await SQLiteMetadataStore(path: path).admitMigration(id: "m1", journal: "{\"phase\":\"copying\"}") == nil)
        // The file as the previous release left it: no log tables, no record of their step.
        try await alterBehindTheStore(
            path, "DROP TABLE log_entries; DROP TABLE log_heads", "DELETE FROM grdb_migrations WHERE identifier = 'v5-migration-logs'")

        let reopened = try SQLiteMetadataStore(path: path)
        let retry = migrationLog("m1")
        try await reopened.openLogs(of: retry.migration)
        #expect(try await reopened.appendToLog(retry, ["a", "b"], limit: 10) == 2)
        #expect(try await reopened.readLog(retry, after: 1, limit: 10) == [LogEntry(position: 2, body: "b")])
        #expect(try await reopened.migrations().map(\.journal) == ["{\"phase\":\"copying\"}"])
        await reopened.close()
    }

    /// A metadata file from before journals kept their plan apart gains the plans' table when opened:
    /// its whole journals read as they were, and the next save with a plan keeps it apart.
    @Test func aFileFromBeforeSeparatePlansGainsTheirTableWhenReopened() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        let store = try SQLiteMetadataStore(path: path)
        #expect(try await store.admitMigration(id: "m1", journal: "{\"id\":\"m1\",\"plan\":1}") == nil)
        await store.close()
        try await alterBehindTheStore(
            path, "DROP TABLE migration_plans", "DELETE FROM grdb_migrations WHERE identifier = 'v8-migration-plans'")

        let reopened = try SQLiteMetadataStore(path: path)
        #expect(try await reopened.migrations().map(\.journal) == ["{\"id\":\"m1\",\"plan\":1}"])
        await #expect(throws: MetadataError.planMissing("m1")) {
            try await reopened.saveMigration(id: "m1", progress: "{\"id\":\"m1\"}", plan: nil)
        }
        try await reopened.saveMigration(id: "m1", progress: "{\"id\":\"m1\"}", plan: "2")
        #expect(try await reopened.migrations().map(\.journal) == ["{\"plan\":2,\"id\":\"m1\"}"])
        await reopened.close()
    }

    /// A damaged row (its progress no JSON object, its plan not JSON) fails to decode for that
    /// migration alone: the list still reads.
    @Test func aDamagedJournalRowIsReturnedForItsMigrationAloneToFail() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        let store = try SQLiteMetadataStore(path: path)
        try await store.saveMigration(id: "good", progress: "{\"id\":\"good\"}", plan: "{}")
        try await store.saveMigration(id: "bad", progress: "{\"id\":\"bad\"}", plan: "{}")
        await store.close()
        try await alterBehindTheStore(
            path, "UPDATE migrations SET journal = 'not an object' WHERE id = 'bad'",
            "UPDATE migration_plans SET plan = 'not json' WHERE id = 'bad'")

        let reopened = try SQLiteMetadataStore(path: path)
        let all = try await reopened.migrations()
        #expect(all.map(\.id) == ["good", "bad"])
        #expect(all.first?.journal == "{\"plan\":{},\"id\":\"good\"}")
        #expect(all.last?.journal == "not an object")
        await reopened.close()
    }

    /// Events recorded through two handles on one file, serialized only by its write lock, get
    /// gapless positions, each where its record said.
    @Test func eventsThroughTwoHandlesOnOneFileGetGaplessPositions() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        let stores = [try SQLiteMetadataStore(path: path), try SQLiteMetadataStore(path: path)]
        let recorded = try await withThrowingTaskGroup(of: [UInt64: UInt64].self) { group in
            for (handle, store) in stores.enumerated() {
                group.addTask {
                    var recorded: [UInt64: UInt64] = [:]
                    for round in 0..<50 {
                        let generation = UInt64(handle * 1000 + round)
                        recorded[try await store.recordEvent(MetadataEvent(kind: .cleanup, generation: generation))] = generation
                    }
                    return recorded
                }
            }
            return try await group.reduce(into: [UInt64: UInt64]()) { $0.merge($1) { old, _ in old } }
        }
        let stored = try await stores[1].events(after: 0, limit: .max)
        #expect(stored.map(\.position) == Array(1...100))
        #expect(stored.allSatisfy { recorded[$0.position] == $0.event.generation })
        for store in stores { await store.close() }
    }

    /// A metadata file from before the event log gains it when opened: the next publish appends
    /// the first event, with the moves from the map published before, and positions survive a reopen.
    @Test func aFileFromBeforeTheEventLogGainsItWhenReopened() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        let ids = [ShardID("s1")!, ShardID("s2")!, ShardID("s3")!]
        let first = try EvenPlacement().shardMap(for: Array(ids.prefix(2)), generation: 1)
        let second = try EvenPlacement().shardMap(for: ids, generation: 2)
        try await SQLiteMetadataStore(path: path).publish(first, replacing: nil)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "DROP TABLE events; DROP TABLE event_head")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v6-events'")
        }
        try queue.close()

        let reopened = try SQLiteMetadataStore(path: path)
        #expect(try await reopened.eventBounds() == (0, 0))
        try await reopened.publish(second, replacing: 1)
        let expected = MetadataEvent(kind: .shardMap, generation: 2, previousGeneration: 1, moves: first.diff(to: second))
        #expect(try await reopened.events(after: 0, limit: 10).map(\.event) == [expected])
        await reopened.close()

        let again = try SQLiteMetadataStore(path: path)
        #expect(try await again.recordEvent(MetadataEvent(kind: .cleanup, generation: 2)) == 2)
        #expect(try await again.eventBounds() == (1, 2))
        await again.close()
    }
}

/// Shard maps kept as moves (`ShardMapRecords`), read through a handle that never saw them and
/// damaged on disk.
@Suite struct SQLiteShardMapChainTests {
    let ids = (1...6).map { ShardID("s\($0)")! }

    func maps() throws -> [ShardMap] {
        // 4,096 points per shard: every map is past the size kept whole on every publish.
        try (1...5).map { try RingPlacement(virtualNodes: 4_096).shardMap(for: Array(ids.prefix($0 + 1)), generation: UInt64($0)) }
    }

    /// Publishes the maps through one handle, runs `body` with it open, and returns the path.
    func published(in folder: TemporaryFolder, _ body: (SQLiteMetadataStore) async throws -> Void = { _ in }) async throws -> String {
        let path = folder.path + "/meta.sqlite"
        let writer = try SQLiteMetadataStore(path: path)
        for (index, map) in try maps().enumerated() { try await writer.publish(map, replacing: index == 0 ? nil : UInt64(index)) }
        try await body(writer)
        await writer.close()
        return path
    }

    @Test func aNewHandleReplaysTheChainAndASnapshotWritesTheWholeText() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        _ = try await published(in: folder) { writer in
            let queue = try DatabaseQueue(path: folder.path + "/meta.sqlite")
            // The first map whole (nothing to diff against), the next four as moves.
            #expect(try await queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM shard_maps") } == 1)
            #expect(try await queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM shard_map_changes") } == 4)
            let reader = try SQLiteMetadataStore(path: folder.path + "/meta.sqlite")
            for map in try maps() { #expect(try await reader.shardMap(generation: map.generation) == map) }
            // Only the handle that kept moves owes a snapshot.
            try await reader.snapshotShardMaps()
            #expect(try await queue.read { try Int.fetchOne($0, sql: "SELECT max(generation) FROM shard_maps") } == 1)
            try await writer.snapshotShardMaps()
            #expect(try await queue.read { try Int.fetchOne($0, sql: "SELECT max(generation) FROM shard_maps") } == 5)
            let fresh = try SQLiteMetadataStore(path: folder.path + "/meta.sqlite")
            #expect(try await fresh.currentShardMap() == maps().last)
            try queue.close()
            await reader.close()
            await fresh.close()
        }
    }

    /// A damaged chain is corrupt metadata, named, never a trap or a map that routes wrongly.
    @Test(arguments: [
        "UPDATE shard_map_changes SET base = 1 WHERE generation = 3",
        "UPDATE shard_map_changes SET moves = 'not json' WHERE generation = 3",
        "UPDATE shard_map_changes SET moves = '[{\"range\":{\"start\":\"0x0\",\"end\":\"0x10\"},\"source\":\"zz\",\"target\":\"s1\"}]' WHERE generation = 3",
        "UPDATE shard_map_changes SET moves = '[{\"range\":{\"start\":\"0x10\",\"end\":\"0x0\"},\"source\":\"s1\",\"target\":\"s2\"}]' WHERE generation = 3",
        "UPDATE shard_map_changes SET moves = x'ff00' WHERE generation = 3",
        "DELETE FROM shard_maps",
    ])
    func aDamagedChainIsCorruptMetadata(damage: String) async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try await published(in: folder)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { try $0.execute(sql: damage) }
        try queue.close()
        let reader = try SQLiteMetadataStore(path: path)
        if damage.hasPrefix("DELETE") {
            await #expect(throws: MetadataError.self) { _ = try await reader.shardMap(generation: 2) }
        } else {
            #expect(try await reader.shardMap(generation: 2) == maps()[1])
        }
        await #expect {
            _ = try await reader.currentShardMap()
        } throws: { error in
            "\(error)".contains("corrupt")
        }
        await reader.close()
    }
}

/// Runs `statements` on the metadata file at `path` behind the store's back, as an older release
/// or a damaged disk would have left it.
private func alterBehindTheStore(_ path: String, _ statements: String...) async throws {
    let queue = try DatabaseQueue(path: path)
    try await queue.write { db in
        for statement in statements { try db.execute(sql: statement) }
    }
    try queue.close()
}
