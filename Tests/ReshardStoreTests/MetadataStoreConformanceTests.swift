import Logging
import ReshardCore
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

@Suite struct MetadataStoreConformanceTests {
    @Test(arguments: ShardBackend.metadataCases)
    func tablesAreCreatedOnce(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let orders = TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "customer_id")!
            try await meta.createTable(orders)
            await #expect(throws: MetadataError.tableExists(orders.name)) { try await meta.createTable(orders) }
            #expect(try await meta.tables() == [orders])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aTableLayoutIsPublishedByCompareAndSet(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let orders = TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "id")!
            let next = try #require(orders.relaid(by: "customer_id"))
            await #expect(throws: MetadataError.layoutConflict(orders.name, expected: 1, found: nil)) {
                try await meta.publishLayout(next, replacing: 1)
            }
            try await meta.createTable(orders)
            let changes = meta.watch()
            try await meta.publishLayout(next, replacing: 1)
            #expect(try await meta.tables() == [next])
            try await meta.publishLayout(next, replacing: 1)  // the same again: harmless
            let third = try #require(next.relaid(by: "region"))
            await #expect(throws: MetadataError.layoutConflict(orders.name, expected: 1, found: 2)) {
                try await meta.publishLayout(third, replacing: 1)
            }
            #expect(try await meta.tables() == [next])
            var heard = false
            for await change in changes where change == .tables {
                heard = true
                break
            }
            #expect(heard, "watchers hear of a layout change")
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func shardsAreRegisteredOnce(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let record = ShardRecord(id: ShardID("s1")!, location: .sqlite(path: "shards/s1.sqlite"))
            try await meta.addShard(record)
            await #expect(throws: MetadataError.shardExists(record.id)) { try await meta.addShard(record) }
            #expect(try await meta.shards() == [record])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func shardMapsArePublishedByCompareAndSet(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let ids = [ShardID("s1")!, ShardID("s2")!]
            let first = try RingPlacement(virtualNodes: 16).shardMap(for: ids, generation: 1)
            #expect(try await meta.currentShardMap() == nil)
            try await meta.publish(first, replacing: nil)
            await #expect(throws: MetadataError.generationConflict(expected: nil, found: 1)) {
                try await meta.publish(first, replacing: nil)
            }
            let second = try EvenPlacement().shardMap(for: ids, generation: 2)
            await #expect(throws: MetadataError.generationConflict(expected: 1, found: 1)) {
                try await meta.publish(second.withGeneration(1), replacing: 1)
            }
            try await meta.publish(second, replacing: 1)
            #expect(try await meta.currentShardMap() == second)
            #expect(try await meta.shardMap(generation: 1) == first)
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func migrationJournalsAreReplacedInPlace(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            try await meta.saveMigration(id: "m1", progress: "{\"phase\":\"copying\"}", plan: "{\"maps\":1}")
            try await meta.saveMigration(id: "m2", progress: "{}", plan: "[]")
            try await meta.saveMigration(id: "m1", progress: "{\"phase\":\"done\"}", plan: nil)
            let all = try await meta.migrations()
            #expect(all.map(\.id) == ["m1", "m2"])
            #expect(all.map(\.journal) == ["{\"plan\":{\"maps\":1},\"phase\":\"done\"}", "{\"plan\":[]}"])
        }
    }

    /// The plan is written once and kept by later saves; a save without it finds none to keep
    /// when the migration is unknown or its journal was last written whole, and writes nothing.
    @Test(arguments: ShardBackend.metadataCases)
    func aJournalSavedWithoutItsPlanNeedsOneStored(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            await #expect(throws: MetadataError.planMissing("m1")) {
                try await meta.saveMigration(id: "m1", progress: "{\"phase\":\"copying\"}", plan: nil)
            }
            #expect(try await meta.migrations().isEmpty)

            #expect(try await meta.admitMigration(id: "m1", journal: "{\"id\":\"m1\",\"plan\":7}") == nil)
            await #expect(throws: MetadataError.planMissing("m1")) {
                try await meta.saveMigration(id: "m1", progress: "{\"id\":\"m1\"}", plan: nil)
            }
            #expect(try await meta.migrations().map(\.journal) == ["{\"id\":\"m1\",\"plan\":7}"])

            try await meta.saveMigration(id: "m1", progress: "{\"id\":\"m1\",\"step\":1}", plan: "8")
            try await meta.saveMigration(id: "m1", progress: "{\"id\":\"m1\",\"step\":2}", plan: nil)
            #expect(try await meta.migrations().map(\.journal) == ["{\"plan\":8,\"id\":\"m1\",\"step\":2}"])
            // Admission writes the whole text again, and the stored plan goes with the old text.
            #expect(try await meta.admitMigration(id: "m1", journal: "{\"plan\":9}") == nil)
            #expect(try await meta.migrations().map(\.journal) == ["{\"plan\":9}"])
            await #expect(throws: MetadataError.planMissing("m1")) {
                try await meta.saveMigration(id: "m1", progress: "{}", plan: nil)
            }
        }
    }

    /// A plan is stored exactly as given, however large or odd (both maps at 1,000 shards are
    /// 11 MB; JSON escapes control characters, so NUL never reaches a store).
    @Test(arguments: ShardBackend.metadataCases)
    func aLargePlanIsStoredOnceAndReadBackExactly(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let plan = "{\"layout\":\"" + String(repeating: "0000000000000000-ffffffffffffffff:s1;é\\u0000", count: 60_000) + "\"}"
            try await meta.saveMigration(id: "big", progress: "{\"round\":0}", plan: plan)
            for round in 1...3 { try await meta.saveMigration(id: "big", progress: "{\"round\":\(round)}", plan: nil) }
            #expect(try await meta.migrations().map(\.journal) == ["{\"plan\":" + plan + ",\"round\":3}"])
        }
    }
}

extension MetadataStoreConformanceTests {
    @Test(arguments: ShardBackend.metadataCases)
    func concurrentPublishersHaveOneWinner(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            let ids = [ShardID("s1")!, ShardID("s2")!]
            let base = try EvenPlacement().shardMap(for: ids, generation: 1)
            try await first.publish(base, replacing: nil)
            var current: UInt64 = 1
            // Several rounds, so later ones race on connections the first opened.
            for _ in 0..<5 {
                // Different new generations, through both handles: a unique key on the generation
                // alone would let several win.
                let outcomes = await withTaskGroup(of: Result<UInt64, MetadataError>.self) { group in
                    for generation in current + 1...current + 8 {
                        let meta = generation.isMultiple(of: 2) ? first : second
                        group.addTask { [current] in
                            do {
                                try await meta.publish(base.withGeneration(generation), replacing: current)
                                return .success(generation)
                            } catch let error as MetadataError {
                                return .failure(error)
                            } catch {
                                return .failure(.corrupt("unexpected \(error)"))
                            }
                        }
                    }
                    return await group.reduce(into: [Result<UInt64, MetadataError>]()) { $0.append($1) }
                }
                let winners = outcomes.compactMap { try? $0.get() }
                let losers = outcomes.compactMap { outcome -> MetadataError? in
                    if case .failure(let error) = outcome { return error }
                    return nil
                }
                try #require(winners.count == 1, "winners: \(winners)")
                #expect(losers.count == 7 && losers.allSatisfy(\.isConflict), "\(losers)")
                #expect(try await second.currentShardMap()?.generation == winners[0])
                current = winners[0]
            }
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func directiveIsSavedReplacedAndCleared(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            #expect(try await first.directive() == nil)
            try await first.saveDirective("{\"held\":[]}")
            #expect(try await second.directive() == "{\"held\":[]}")
            try await first.saveDirective("{\"held\":[1]}")
            #expect(try await second.directive() == "{\"held\":[1]}")
            try await first.saveDirective(nil)
            #expect(try await second.directive() == nil)
            try await first.saveDirective(nil)
            #expect(try await first.directive() == nil)
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func reportsAreReplacedPerRouterAndListedByRouter(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            #expect(try await first.reports().isEmpty)
            try await first.saveReport(router: "r2", report: "{\"n\":1}")
            try await second.saveReport(router: "r1", report: "{\"n\":2}")
            try await first.saveReport(router: "r2", report: "{\"n\":3}")
            let reports = try await second.reports()
            #expect(reports.map(\.router) == ["r1", "r2"])
            #expect(reports.map(\.report) == ["{\"n\":2}", "{\"n\":3}"])
            // Milliseconds, not seconds: any clock this test runs under is past 2020 in milliseconds.
            #expect(reports.allSatisfy { $0.savedAtMillis > 1_577_836_800_000 })
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func watchersHearEveryKindOfChange(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { writer, watcher in
            let heard = ChangeRecorder(watcher.watch())
            // The watcher's listener connects in the background; a probe repeated until it is
            // heard shows it listens. Its first round of every kind (as it connects) ends with
            // `.directive`, so it is all recorded by then and cleared with the probe.
            #expect(
                try await eventually {
                    try await writer.saveDirective("probe")
                    return heard.contains(.directive)
                })
            heard.clear()

            let ids = [ShardID("s1")!]
            try await writer.publish(try EvenPlacement().shardMap(for: ids, generation: 1), replacing: nil)
            try await expectHeard(.shardMap, heard)
            try await writer.createTable(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "customer_id")!)
            try await expectHeard(.tables, heard)
            try await writer.addShard(ShardRecord(id: ids[0], location: .postgres(url: "postgres://reshard@db1:5432/s1")))
            try await expectHeard(.shards, heard)
            try await writer.saveDirective("{}")
            try await expectHeard(.directive, heard)
            try await writer.saveDirective(nil)
            try await expectHeard(.directive, heard)
            #expect(try await watcher.directive() == nil)
            _ = try await writer.recordEvent(MetadataEvent(kind: .cleanup, generation: 1))
            try await expectHeard(.events, heard)

            await watcher.close()
            #expect(try await eventually { heard.isFinished }, "closing the store finishes its watch streams")
            #expect(await watcher.watch().first { _ in true } == nil, "a stream asked for after closing is finished")
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func leadershipHasOneHolder(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            let leader = first.leadership("migrator")
            let rival = second.leadership("migrator")
            let acquired = try await leader.tryAcquire()
            #expect(acquired)
            #expect(leader.isHeld)
            #expect(try await leader.tryAcquire(), "a holder acquiring again still holds")
            #expect(try await !rival.tryAcquire())
            #expect(!rival.isHeld)

            let other = second.leadership("rebalancer")
            #expect(try await other.tryAcquire(), "leases of other names are independent")
            await other.release()

            await leader.release()
            #expect(!leader.isHeld)
            await leader.release()
            #expect(try await eventually { try await rival.tryAcquire() })
            #expect(try await !leader.tryAcquire())
            await rival.release()

            if backend.metadataSpansProcesses {
                #expect(try await leader.tryAcquire())
                await first.close()
                #expect(!leader.isHeld, "a closed store holds nothing")
                #expect(try await eventually { try await rival.tryAcquire() }, "the lease passes when its holder's store closes")
                await rival.release()
            }
        }
    }

    @Test(.enabled(if: ShardBackend.postgres.isAvailable))
    func leadershipPassesWhenTheHoldersConnectionDies() async throws {
        try await ShardBackend.postgres.withMetadataStores { first, second in
            let leader = first.leadership("migrator")
            let rival = second.leadership("migrator")
            #expect(try await leader.tryAcquire())
            #expect(try await !rival.tryAcquire())
            try await ShardBackend.terminateSessions("reshard-leader:migrator", of: first)
            #expect(try await eventually { !leader.isHeld }, "the holder notices its session is gone")
            #expect(try await eventually { try await rival.tryAcquire() })
            #expect(try await !leader.tryAcquire())
            await rival.release()
        }
    }

    @Test(.enabled(if: ShardBackend.postgres.isAvailable))
    func watchersHearChangesAgainAfterTheListenerReconnects() async throws {
        try await ShardBackend.postgres.withMetadataStores { writer, watcher in
            let heard = ChangeRecorder(watcher.watch())
            #expect(
                try await eventually {
                    try await writer.saveDirective("probe")
                    return heard.contains(.directive)
                })
            heard.clear()
            // A change heard means every earlier probe was heard too: the slate is clean.
            try await writer.createTable(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "customer_id")!)
            try await expectHeard(.tables, heard)

            try await ShardBackend.terminateSessions("reshard-metadata-listener", of: watcher)
            // Nothing changed, but the watcher cannot know that: once it listens again it says
            // every kind may have.
            #expect(try await eventually { Set(heard.all) == Set(MetadataChange.allCases) })
            heard.clear()
            try await writer.addShard(ShardRecord(id: ShardID("s1")!, location: .sqlite(path: "s1.sqlite")))
            try await expectHeard(.shards, heard)
        }
    }

    @Test func anUnreachablePostgresIsNamedWithoutItsPassword() async throws {
        let endpoint = try PostgresEndpoint(url: "postgres://reshard:s3cret-pw@127.0.0.1:1/meta")
        var quiet = Logger(label: "reshard.test")
        quiet.logLevel = .critical
        do {
            let store = try await PostgresMetadataStore.open(endpoint: endpoint, logger: quiet)
            await store.close()
            Issue.record("opened a metadata store on a closed port")
        } catch let error as StoreError {
            #expect("\(error)".contains("metadata at postgres://reshard@127.0.0.1:1/meta cannot be opened"), "\(error)")
            #expect(!"\(error)".contains("s3cret-pw"))
        }
    }
}

/// Records what a watch stream yields, for tests to wait on.
final class ChangeRecorder: Sendable {
    private let state = Mutex<(changes: [MetadataChange], finished: Bool)>(([], false))

    init(_ stream: AsyncStream<MetadataChange>) {
        Task {
            for await change in stream { self.state.withLock { $0.changes.append(change) } }
            self.state.withLock { $0.finished = true }
        }
    }

    func contains(_ change: MetadataChange) -> Bool { state.withLock { $0.changes.contains(change) } }
    var all: [MetadataChange] { state.withLock { $0.changes } }
    func clear() { state.withLock { $0.changes.removeAll() } }
    var isFinished: Bool { state.withLock { $0.finished } }
}

/// Waits (bounded) until `heard` has recorded `change`, then forgets what it recorded: every
/// change made before this one has been heard by then, as notifications arrive in commit order.
func expectHeard(
    _ change: MetadataChange, _ heard: ChangeRecorder, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    #expect(try await eventually { heard.contains(change) }, "watcher heard \(change.rawValue)", sourceLocation: sourceLocation)
    heard.clear()
}

/// Polls `condition` every 50 ms for up to `limit`; whether it held. Bounds a wait, never times
/// one: the bound is far above the milliseconds a notification takes, because on a loaded
/// machine the task that records it has been seen to wait over 5 s for a thread.
func eventually(within limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try await Task.sleep(for: .milliseconds(50))
    }
}

extension MetadataStoreConformanceTests {
    /// Admission is one atomic step in the store: of concurrent creates, from two handles (two
    /// processes on PostgreSQL), exactly one is journaled and takes the slot.
    @Test(arguments: ShardBackend.metadataCases)
    func concurrentAdmissionsHaveOneWinner(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            for round in 0..<4 {
                let ids = (0..<12).map { "r\(round)m\($0)" }
                let answers = try await withThrowingTaskGroup(of: (String, String?).self) { group in
                    for (index, id) in ids.enumerated() {
                        let store = index % 2 == 0 ? first : second
                        group.addTask { (id, try await store.admitMigration(id: id, journal: "{\"n\":\(index)}")) }
                    }
                    return try await group.reduce(into: [String: String?]()) { $0[$1.0] = $1.1 }
                }
                let winners = answers.filter { $0.value == nil }.map(\.key)
                try #require(winners.count == 1, "\(answers)")
                let winner = winners[0]
                for (id, holder) in answers where id != winner { #expect(holder == winner) }
                let journaled = try await first.migrations().map(\.id).filter { $0.hasPrefix("r\(round)") }
                #expect(journaled == [winner])
                // The holder may admit itself again (a resume); others wait for its release.
                #expect(try await second.admitMigration(id: winner, journal: "{\"again\":true}") == nil)
                #expect(try await first.migrations().first { $0.id == winner }?.journal == "{\"again\":true}")
                try await first.releaseMigration(id: "not-the-holder")
                #expect(try await second.admitMigration(id: "late", journal: "{}") == winner)
                try await second.releaseMigration(id: winner)
            }
            #expect(try await first.admitMigration(id: "after", journal: "{}") == nil)
            try await first.releaseMigration(id: "after")
        }
    }
}

extension MetadataStoreConformanceTests {
    /// The maps of a run of add-shard publishes, each replacing the one before.
    func addShardMaps(count: Int) throws -> [ShardMap] {
        let ids = (1...count + 1).map { ShardID("s\($0)")! }
        return try (1...count).map { generation in
            // 128 ranges per shard: from 16 shards on, past the size every publish keeps whole.
            try RingPlacement(virtualNodes: 128).shardMap(for: Array(ids.prefix(generation + 1)), generation: UInt64(generation))
        }
    }

    /// Publishes keep a generation as its moves (`ShardMapRecords`) and the chain stays
    /// bounded: every generation reads back exactly through either handle, whether it was
    /// snapshotted or not, before and after a snapshot, and each publish's event has its moves.
    @Test(arguments: ShardBackend.metadataCases)
    func everyGenerationReadsBackWhetherKeptAsMovesOrWhole(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            let maps = try addShardMaps(count: 40)
            for (index, map) in maps.enumerated() {
                try await first.publish(map, replacing: index == 0 ? nil : map.generation - 1)
                // A snapshot now and then, as cutovers take one after their holds.
                if index % 7 == 3 { try await first.snapshotShardMaps() }
                if index % 5 == 0 { #expect(try await second.currentShardMap() == map) }
            }
            for map in maps {
                #expect(try await second.shardMap(generation: map.generation) == map)
                #expect(try await first.shardMap(generation: map.generation) == map)
            }
            #expect(try await second.shardMap(generation: 41) == nil)
            #expect(try await second.shardMap(generation: 0) == nil)
            try await first.snapshotShardMaps()
            try await first.snapshotShardMaps()
            #expect(try await second.currentShardMap() == maps.last)
            let events = try await second.events(after: 0, limit: 100).map(\.event)
            #expect(events.count == maps.count)
            for (index, event) in events.enumerated().dropFirst() {
                #expect(event.moves == maps[index - 1].diff(to: maps[index]))
            }
        }
    }

    /// A handle that never saw the replaced map (a restarted migrator) publishes over it.
    @Test(arguments: ShardBackend.metadataCases)
    func aHandleWithoutTheReplacedMapPublishesOverIt(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            let maps = try addShardMaps(count: 4)
            try await first.publish(maps[0], replacing: nil)
            try await first.publish(maps[1], replacing: 1)
            try await second.publish(maps[2], replacing: 2)
            await #expect(throws: MetadataError.self) { try await second.publish(maps[3], replacing: 9) }
            try await first.publish(maps[3], replacing: 3)
            for map in maps { #expect(try await second.shardMap(generation: map.generation) == map) }
            let events = try await first.events(after: 0, limit: 10).map(\.event)
            #expect(events.map(\.moves) == [[], maps[0].diff(to: maps[1]), maps[1].diff(to: maps[2]), maps[2].diff(to: maps[3])])
        }
    }
}
