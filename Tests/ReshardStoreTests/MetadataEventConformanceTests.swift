import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// The cluster's event log, which caches follow to hear of a new shard map, a switched layout or
/// a cleanup, behaves alike on every metadata backend; a map or a layout is never published
/// without its event, and a write that fails appends none.
@Suite struct MetadataEventConformanceTests {
    @Test func aReadsLimitIsBroughtIntoItsRange() {
        #expect(MetadataEvent.clampedReadLimit(0) == 1)
        #expect(MetadataEvent.clampedReadLimit(-1) == 1)
        #expect(MetadataEvent.clampedReadLimit(.min) == 1)
        #expect(MetadataEvent.clampedReadLimit(17) == 17)
        #expect(MetadataEvent.clampedReadLimit(.max) == MetadataEvent.readLimits.upperBound)
    }

    @Test(arguments: ShardBackend.metadataCases)
    func theFirstMapsEventNamesNoPreviousGenerationAndNoMoves(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta async throws in
            #expect(try await meta.events(after: 0, limit: 10) == [])
            #expect(try await bounds(meta) == [0, 0], "an empty log")
            try await meta.publish(try twoShards(generation: 1), replacing: nil)
            let events = try await meta.events(after: 0, limit: 10)
            #expect(events.map(\.position) == [1])
            #expect(events.map(\.event) == [MetadataEvent(kind: .shardMap, generation: 1)])
            // Milliseconds, not seconds: any clock this test runs under is past 2020 in milliseconds.
            #expect(events.allSatisfy { $0.atMillis > 1_577_836_800_000 })
            #expect(try await bounds(meta) == [1, 1])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aMapsEventHoldsExactlyTheRangesWhoseOwnerChanged(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let first = try twoShards(generation: 1)
            let second = try EvenPlacement().shardMap(for: shards("s1", "s2", "s3"), generation: 2)
            let moves = first.diff(to: second)
            #expect(!moves.isEmpty)
            try await meta.publish(first, replacing: nil)
            try await meta.publish(second, replacing: 1)
            let events = try await meta.events(after: 0, limit: 10)
            #expect(events.map(\.position) == [1, 2])
            #expect(events.last?.event == MetadataEvent(kind: .shardMap, generation: 2, previousGeneration: 1, moves: moves))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aPublishThatLosesItsCompareAndSetAppendsNothing(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let first = try twoShards(generation: 1)
            try await meta.publish(first, replacing: nil)
            await #expect(throws: MetadataError.generationConflict(expected: nil, found: 1)) {
                try await meta.publish(first.withGeneration(2), replacing: nil)
            }
            await #expect(throws: MetadataError.generationConflict(expected: 1, found: 1)) {
                try await meta.publish(first.withGeneration(1), replacing: 1)
            }
            #expect(try await meta.events(after: 0, limit: 10).map(\.position) == [1])
            #expect(try await bounds(meta) == [1, 1])
            try await meta.publish(first.withGeneration(5), replacing: 1)
            let events = try await meta.events(after: 0, limit: 10)
            #expect(events.map(\.position) == [1, 2], "the refusals used no position")
            #expect(events.last?.event == MetadataEvent(kind: .shardMap, generation: 5, previousGeneration: 1))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aLayoutSwitchAppendsItsEventAndARepublishOrAConflictNone(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let orders = try #require(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "id"))
            let next = try #require(orders.relaid(by: "customer_id"))
            await #expect(throws: MetadataError.layoutConflict(orders.name, expected: 1, found: nil)) {
                try await meta.publishLayout(next, replacing: 1)
            }
            try await meta.createTable(orders)
            try await meta.publish(try twoShards(generation: 1), replacing: nil)
            try await meta.publishLayout(next, replacing: 1)
            try await meta.publishLayout(next, replacing: 1)  // the same again: harmless, and nothing to hear of
            let third = try #require(next.relaid(by: "region"))
            await #expect(throws: MetadataError.layoutConflict(orders.name, expected: 1, found: 2)) {
                try await meta.publishLayout(third, replacing: 1)
            }
            let events = try await meta.events(after: 0, limit: 10)
            #expect(events.map(\.position) == [1, 2], "maps and layouts share one log")
            #expect(events.last?.event == MetadataEvent(kind: .layout, generation: 2, previousGeneration: 1, table: orders.name))
            #expect(try await bounds(meta) == [1, 2])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aRecordedEventContinuesThePositionsAndComesBackByteForByte(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            try await meta.publish(try twoShards(generation: 1), replacing: nil)
            // A migration id is free text: quotes, escapes, a decomposed accent, an emoji, NUL.
            let migration = "m-e\u{301}/ü 'q' \"dq\" \\n \\ \n\t😀 %_ \u{0} end"
            let table = try #require(TableName("t" + String(repeating: "a_9", count: 20) + "z"))
            let cleanup = MetadataEvent(kind: .cleanup, generation: 7, previousGeneration: 6, table: table, migration: migration)
            let moved = MetadataEvent(
                kind: .cleanup, generation: .max, previousGeneration: 0,
                moves: [Move(range: HashRange(start: .max - 1, last: .max), source: ShardID("s1")!, target: ShardID("s2")!)])
            let bare = MetadataEvent(kind: .cleanup, generation: 0)
            #expect(try await meta.recordEvent(cleanup) == 2)
            #expect(try await meta.recordEvent(moved) == 3)
            #expect(try await meta.recordEvent(bare) == 4)
            let events = try await meta.events(after: 1, limit: 10)
            #expect(events.map(\.position) == [2, 3, 4])
            #expect(events.map(\.event) == [cleanup, moved, bare])
            // Bytes, not `String ==`, which calls canonically equivalent texts equal.
            #expect(events.first?.event.migration.map { Array($0.utf8) } == Array(migration.utf8))
            #expect(try await bounds(meta) == [1, 4])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func readsStartAfterThePositionGivenAndStopAtTheirLimit(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta async throws in
            for generation in 1...7 { #expect(try await meta.recordEvent(cleanup(UInt64(generation))) == UInt64(generation)) }
            #expect(try await positions(meta, after: 0, limit: 3) == [1, 2, 3])
            #expect(try await positions(meta, after: 3, limit: 3) == [4, 5, 6])
            #expect(try await positions(meta, after: 6, limit: 3) == [7])
            #expect(try await positions(meta, after: 7, limit: 3) == [])
            #expect(try await positions(meta, after: .max, limit: 3) == [], "no position is past 2^63, and none traps")
            // A limit below 1 reads one event: a reader always makes progress.
            #expect(try await positions(meta, after: 0, limit: 0) == [1])
            #expect(try await positions(meta, after: 5, limit: -1) == [6])
            #expect(try await positions(meta, after: 0, limit: .max) == Array(1...7))
            #expect(try await meta.events(after: 2, limit: 1).map(\.event) == [cleanup(3)])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func readsAreCappedAtTheMostOneReadReturns(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta in
            let most = MetadataEvent.readLimits.upperBound
            for generation in 1...most + 5 { _ = try await meta.recordEvent(cleanup(UInt64(generation))) }
            let page = try await meta.events(after: 0, limit: .max)
            #expect(page.count == most)
            #expect(page.last?.position == UInt64(most))
            #expect(try await positions(meta, after: UInt64(most), limit: .max) == Array(UInt64(most + 1)...UInt64(most + 5)))
        }
    }

    /// The log keeps its newest events (five here, `MetadataEvent.retained` in production),
    /// trimmed by whatever appends, and never reuses a position.
    @Test(arguments: ShardBackend.metadataCases)
    func theLogKeepsItsNewestEventsAndNeverReusesAPosition(backend: ShardBackend) async throws {
        try await backend.withMetadataStore(eventsRetained: 5) { meta in
            for generation in 1...12 { #expect(try await meta.recordEvent(cleanup(UInt64(generation))) == UInt64(generation)) }
            #expect(try await bounds(meta) == [8, 12])
            let kept = try await meta.events(after: 0, limit: 100)
            #expect(kept.map(\.position) == [8, 9, 10, 11, 12])
            #expect(kept.map(\.event) == (8...12).map { cleanup(UInt64($0)) })
            #expect(try await positions(meta, after: 3, limit: 100) == [8, 9, 10, 11, 12], "a reader behind the oldest checks bounds")

            try await meta.publish(try twoShards(generation: 1), replacing: nil)
            #expect(try await bounds(meta) == [9, 13], "a publish appends after the last position and trims too")
            let orders = try #require(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "id"))
            try await meta.createTable(orders)
            try await meta.publishLayout(try #require(orders.relaid(by: "customer_id")), replacing: 1)
            #expect(try await bounds(meta) == [10, 14])
            #expect(try await meta.recordEvent(cleanup(15)) == 15)
            #expect(try await positions(meta, after: 0, limit: 100) == [11, 12, 13, 14, 15])
        }
    }
}

extension MetadataEventConformanceTests {
    /// Racing publishers through two handles (two processes on PostgreSQL): each round has one
    /// winner, and the log holds exactly the winners' events, in generation order, at gapless
    /// positions, each with the moves from the map its winner replaced.
    @Test(arguments: ShardBackend.metadataCases)
    func racingPublishersAppendExactlyTheWinnersEvents(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            // s1 owns the hashes below a bound that grows with the generation: every map moves a range.
            let (s1, s2) = (try #require(ShardID("s1")), try #require(ShardID("s2")))
            let map: @Sendable (UInt64) throws -> ShardMap = { generation in
                try ShardMap(
                    generation: generation,
                    assignments: [
                        RangeAssignment(range: HashRange(start: 0, last: (generation << 32) - 1), shard: s1),
                        RangeAssignment(range: HashRange(start: generation << 32, last: .max), shard: s2),
                    ])
            }
            try await first.publish(map(1), replacing: nil)
            var winners: [UInt64] = [1]
            for _ in 0..<4 {
                let current = winners[winners.count - 1]
                let won = await withTaskGroup(of: UInt64?.self) { group in
                    for generation in current + 1...current + 8 {
                        let meta = generation.isMultiple(of: 2) ? first : second
                        group.addTask { (try? await meta.publish(try map(generation), replacing: current)).map { generation } }
                    }
                    return await group.reduce(into: [UInt64]()) { if let generation = $1 { $0.append(generation) } }
                }
                try #require(won.count == 1, "winners: \(won)")
                winners += won
            }
            let expected =
                try [MetadataEvent(kind: .shardMap, generation: 1)]
                + zip(winners, winners.dropFirst()).map { previous, generation in
                    MetadataEvent(
                        kind: .shardMap, generation: generation, previousGeneration: previous,
                        moves: try map(previous).diff(to: try map(generation)))
                }
            let events = try await second.events(after: 0, limit: 100)
            #expect(events.map(\.event) == expected)
            #expect(events.map(\.position) == Array(1...UInt64(winners.count)))
            #expect(expected.dropFirst().allSatisfy { !$0.moves.isEmpty })
        }
    }

    /// Records racing through two handles get gapless positions, each event once at the position
    /// its record returned, and a reader following the log as it grows never finds a gap that a
    /// later commit fills.
    @Test(arguments: ShardBackend.metadataCases)
    func racingRecordsGetGaplessPositionsInCommitOrder(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            let (writersPerStore, rounds) = (2, 25)
            let total = 2 * writersPerStore * rounds
            let followed = Task { try await follow(second, until: total) }
            let recorded = try await withThrowingTaskGroup(of: [UInt64: UInt64].self) { group in
                for (handle, meta) in [first, second].enumerated() {
                    for writer in 0..<writersPerStore {
                        group.addTask {
                            var recorded: [UInt64: UInt64] = [:]
                            for round in 0..<rounds {
                                // The generation names the writer and round, so each event is told apart.
                                let generation = UInt64((handle * writersPerStore + writer) * 1000 + round)
                                recorded[try await meta.recordEvent(cleanup(generation))] = generation
                            }
                            return recorded
                        }
                    }
                }
                return try await group.reduce(into: [UInt64: UInt64]()) { $0.merge($1) { old, _ in old } }
            }
            #expect(recorded.keys.sorted() == Array(1...UInt64(total)), "every record got a position of its own")
            let stored = try await first.events(after: 0, limit: .max)
            #expect(stored.map(\.position) == Array(1...UInt64(total)))
            #expect(stored.allSatisfy { recorded[$0.position] == $0.event.generation }, "each event is where its record said")
            #expect(try await followed.value == stored, "the reader saw the same log")
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func watchersHearOfEveryEventAppended(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { writer, watcher in
            let heard = ChangeRecorder(watcher.watch())
            // As in `watchersHearEveryKindOfChange`: a probe heard shows the listener listens, and
            // that its first round (every kind) is recorded, so clearing it leaves a clean slate.
            #expect(
                try await eventually {
                    try await writer.saveDirective("probe")
                    return heard.contains(.directive)
                })
            heard.clear()

            _ = try await writer.recordEvent(cleanup(1))
            try await expectHeard(.events, heard)
            // `.events` comes before the other kind of the same write, so once that is heard both are.
            try await writer.publish(try twoShards(generation: 1), replacing: nil)
            #expect(try await eventually { heard.contains(.shardMap) })
            #expect(heard.contains(.events), "a publish is heard as an event too")
            heard.clear()
            let orders = try #require(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "id"))
            try await writer.createTable(orders)
            try await expectHeard(.tables, heard)
            let next = try #require(orders.relaid(by: "customer_id"))
            try await writer.publishLayout(next, replacing: 1)
            #expect(try await eventually { heard.contains(.tables) })
            #expect(heard.contains(.events), "a layout switch is heard as an event too")
            heard.clear()
            try await writer.publishLayout(next, replacing: 1)
            #expect(try await eventually { heard.contains(.tables) })
            #expect(!heard.contains(.events), "a harmless republish appends no event")
        }
    }
}

/// `eventBounds` as `[first, last]`, for `#expect` to compare.
private func bounds(_ meta: any MetadataStore) async throws -> [UInt64] {
    let bounds = try await meta.eventBounds()
    return [bounds.first, bounds.last]
}

/// The positions one read returns.
private func positions(_ meta: any MetadataStore, after position: UInt64, limit: Int) async throws -> [UInt64] {
    try await meta.events(after: position, limit: limit).map(\.position)
}

/// A cleanup event of `generation`.
private func cleanup(_ generation: UInt64) -> MetadataEvent { MetadataEvent(kind: .cleanup, generation: generation) }

private func shards(_ names: String...) -> [ShardID] { names.compactMap { ShardID($0) } }

/// Shards s1 and s2, each owning half of the hash space.
private func twoShards(generation: UInt64) throws -> ShardMap {
    try EvenPlacement().shardMap(for: shards("s1", "s2"), generation: generation)
}

/// Reads the log as it grows until it holds `total` events, each read right after the last
/// event already read; records an issue, and stops, when a read skips a position: an event
/// committed after a higher one was visible. Bounded: a stuck log fails the test, not the run.
private func follow(_ meta: any MetadataStore, until total: Int) async throws -> [StoredEvent] {
    var seen: [StoredEvent] = []
    let deadline = ContinuousClock.now + .seconds(120)
    while seen.count < total, ContinuousClock.now < deadline {
        let next = try await meta.events(after: UInt64(seen.count), limit: 16)
        guard next.map(\.position) == (0..<next.count).map({ UInt64(seen.count + 1 + $0) }) else {
            Issue.record("read after \(seen.count) gave positions \(next.map(\.position))")
            break
        }
        seen += next
        // Yields the threads to the writers, which the in-memory store never suspends.
        if next.isEmpty { try await Task.sleep(for: .milliseconds(1)) } else { await Task.yield() }
    }
    return seen
}
