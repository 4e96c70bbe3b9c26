import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// The contract of `ShardStore.place`, the primary-key lookup protocol's one write, on every
/// backend: the compare-and-set, the two version rules, fences for a router's placements only,
/// and the changelog for a router's placements only.
@Suite struct PlacementConformanceTests {
    let lookup = TableName("orders__k2")!

    func row(_ pk: String, version: UInt64, body: String? = "c1\n", key: String? = nil) -> StoredRow {
        StoredRow(table: lookup, pk: pk, shardKey: key ?? pk, version: version, body: body)
    }

    @Test(arguments: ShardBackend.available)
    func compareAndSetWritesOnlyOverTheExpectedRow(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            let first = Placement(row: row("a", version: 10), expected: .absent, assignsVersion: true, generation: 1)
            #expect(try await store.place(first) == .written(version: 10))
            #expect(try await store.place(first) == .conflict(stored: 10), "no longer absent")
            let stale = Placement(row: row("a", version: 5, body: "c2\nc1"), expected: .version(9), assignsVersion: true, generation: 1)
            #expect(try await store.place(stale) == .conflict(stored: 10))
            #expect(try await store.get(table: lookup, pk: "a")?.body == "c1\n", "nothing written on a conflict")
            // Assigned: max(stored + 1, proposed), whatever the proposal.
            let next = Placement(row: row("a", version: 5, body: "c2\nc1"), expected: .version(10), assignsVersion: true, generation: 1)
            #expect(try await store.place(next) == .written(version: 11))
            #expect(try await store.get(table: lookup, pk: "a") == row("a", version: 11, body: "c2\nc1"))
            let missing = Placement(row: row("b", version: 5), expected: .version(4), assignsVersion: true, generation: 1)
            #expect(try await store.place(missing) == .conflict(stored: nil), "expected a row that is not there")
            #expect(try await store.get(table: lookup, pk: "b") == nil)
        }
    }

    @Test(arguments: ShardBackend.available)
    func anExactPlacementIsWrittenOnlyWhenStrictlyNewer(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            #expect(try await store.place(Placement(row: row("a", version: 20, body: "{}"), generation: nil)) == .written(version: 20))
            #expect(
                try await store.place(Placement(row: row("a", version: 20, body: "{\"x\":1}"), generation: nil)) == .notNewer(stored: 20))
            #expect(try await store.place(Placement(row: row("a", version: 19, body: nil), generation: 1)) == .notNewer(stored: 20))
            #expect(try await store.get(table: lookup, pk: "a")?.body == "{}")
            // A tombstone placed where no row is blocks every older row from landing later.
            #expect(try await store.place(Placement(row: row("b", version: 30, body: nil), generation: 1)) == .written(version: 30))
            #expect(try await store.place(Placement(row: row("b", version: 29, body: "{}"), generation: 1)) == .notNewer(stored: 30))
            #expect(try await store.get(table: lookup, pk: "b")?.isDeleted == true)
            // Exact with a compare-and-set: both must hold.
            let both = Placement(row: row("a", version: 25, body: "{\"y\":2}"), expected: .version(20), generation: nil)
            #expect(try await store.place(both) == .written(version: 25))
        }
    }

    /// The migrator's claim (a layout writer's): compare-and-set that keeps its version. Every
    /// outcome, and claims of one key racing: exactly one wins, and a loser is told `conflict`
    /// (so it reads again), never `notNewer` (which would drop an image newer than the winner's).
    @Test(arguments: ShardBackend.available)
    func theMigratorsCompareAndSetKeepsItsVersionAndOneRacerWins(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            func claim(_ pk: String, _ version: UInt64, _ expected: Placement.Expectation) -> Placement {
                Placement(row: row(pk, version: version), expected: expected, generation: nil)
            }
            #expect(try await store.place(claim("a", 10, .absent)) == .written(version: 10))
            #expect(try await store.place(claim("a", 11, .absent)) == .conflict(stored: 10))
            #expect(try await store.place(claim("a", 12, .version(9))) == .conflict(stored: 10))
            #expect(try await store.place(claim("a", 10, .version(10))) == .notNewer(stored: 10))
            #expect(try await store.place(claim("a", 9, .version(10))) == .notNewer(stored: 10))
            #expect(try await store.place(claim("b", 5, .version(4))) == .conflict(stored: nil))
            #expect(try await store.place(claim("a", UInt64.max, .version(10))) == .written(version: UInt64.max))
            #expect(try await store.get(table: lookup, pk: "a")?.version == UInt64.max)
            #expect(try await store.get(table: lookup, pk: "b") == nil)
            // Versions from 2^63 on rank above every smaller one in the other writes too.
            #expect(try await store.place(Placement(row: row("c", version: 1 << 63), generation: nil)) == .written(version: 1 << 63))
            #expect(try await store.place(Placement(row: row("c", version: 5), generation: nil)) == .notNewer(stored: 1 << 63))
            #expect(try await store.apply([row("c", version: 7)]) == 0)
            #expect(try await store.apply([row("c", version: UInt64.max)]) == 1)
            #expect(try await store.get(table: lookup, pk: "c")?.version == UInt64.max)

            #expect(try await store.place(claim("race", 100, .absent)) == .written(version: 100))
            let outcomes = try await withThrowingTaskGroup(of: (UInt64, PlacementOutcome).self) { group in
                for version in UInt64(101)...116 {
                    group.addTask { (version, try await store.place(claim("race", version, .version(100)))) }
                }
                return try await group.reduce(into: [(UInt64, PlacementOutcome)]()) { $0.append($1) }
            }
            let winners = outcomes.filter { if case .written = $0.1 { return true } else { return false } }
            #expect(winners.count == 1, "\(outcomes)")
            let winner = try #require(winners.first?.0)
            for (version, outcome) in outcomes where version != winner {
                #expect(outcome == .conflict(stored: winner) || outcome == .conflict(stored: 100), "\(version): \(outcome)")
            }
            #expect(try await store.get(table: lookup, pk: "race")?.version == winner)
        }
    }

    @Test(arguments: ShardBackend.available)
    func fencesStopARoutersPlacementButNotTheMigrators(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            let hash = KeyHash.of("a")
            try await store.fence([HashRange(start: hash, last: hash)], generation: 4)
            await #expect(throws: StoreError.self) { try await store.place(Placement(row: row("a", version: 5), generation: 3)) }
            #expect(try await store.get(table: lookup, pk: "a") == nil, "nothing written behind the fence")
            #expect(try await store.place(Placement(row: row("a", version: 5), generation: 4)) == .written(version: 5))
            #expect(try await store.place(Placement(row: row("a", version: 6), generation: nil)) == .written(version: 6))
        }
    }

    @Test(arguments: ShardBackend.available)
    func aRoutersPlacementIsAClientChange(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            let stream = try #require(ChangeStreamID("placements"))
            let start = try await store.openChangeStream(stream)
            #expect(try await store.place(Placement(row: row("routed", version: 7), generation: 1)) == .written(version: 7))
            #expect(try await store.place(Placement(row: row("copied", version: 8), generation: nil)) == .written(version: 8))
            let batch = try await store.changes(stream, after: start, through: nil, limit: 100)
            #expect(batch.changes.map(\.row).contains(row("routed", version: 7)), "a router's placement is in the changelog")
            // The migrator's placement may be there too (PostgreSQL's decoding cannot leave it out),
            // but then only as the row itself.
            for change in batch.changes where change.row.pk == "copied" { #expect(change.row == row("copied", version: 8)) }
            try await store.closeChangeStream(stream)
        }
    }

    @Test(arguments: ShardBackend.available)
    func hostileKeysAndBodiesAreRefusedWithNothingWritten(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            for pk in ["", "a\u{0}b", String(repeating: "x", count: RowKey.maxStoredBytes + 1), "tab\tkey"] {
                await #expect(throws: StoreError.self) {
                    try await store.place(Placement(row: row(pk, version: 1, key: "k"), generation: 1))
                }
            }
            await #expect(throws: StoreError.self) {
                try await store.place(Placement(row: row("a", version: 1, key: "k\u{7F}"), generation: 1))
            }
            await #expect(throws: StoreError.self) {
                try await store.place(Placement(row: row("a", version: 1, body: "c1\u{0}\n"), generation: 1))
            }
            let longest = String(repeating: "é", count: RowKey.maxBytes / 2)
            #expect(try await store.place(Placement(row: row(longest, version: 3, body: "🦀\n"), generation: 1)) == .written(version: 3))
            #expect(try await store.get(table: lookup, pk: longest)?.body == "🦀\n", "stored and returned byte for byte")
            #expect(
                try await store.place(Placement(row: row("max", version: UInt64.max, body: "{}"), generation: nil))
                    == .written(version: UInt64.max))
            #expect(try await store.get(table: lookup, pk: "max")?.version == UInt64.max)
            #expect(try await store.get(table: lookup, pk: "a") == nil)
        }
    }

    @Test(arguments: ShardBackend.available)
    func concurrentClaimsOfOneKeyGetOneWinnerEach(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(lookup)
            // Eight writers race to claim the same absent entry: exactly one wins.
            let outcomes = try await withThrowingTaskGroup(of: PlacementOutcome.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        try await store.place(
                            Placement(
                                row: row("hot", version: 100, body: "c\(writer)\n"), expected: .absent, assignsVersion: true, generation: 1)
                        )
                    }
                }
                return try await group.reduce(into: [PlacementOutcome]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .written(version: 100) }.count == 1)
            #expect(outcomes.filter { $0 == .conflict(stored: 100) }.count == 7)
        }
    }
}
