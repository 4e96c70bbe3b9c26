import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

@testable import ReshardEngine

/// Reads and writes by primary key of a table placed by another field through its primary-key
/// lookup (the layout a shard-key change leaves), on a real router over memory shards: where
/// rows land, moves of a row between shard keys, writers that stop between their steps, and
/// concurrent writers of the same keys.
@Suite struct LookupTableTests {
    struct Cluster: Sendable {
        let router: ShardRouter
        let stores: [ShardID: MemoryShardStore]
        let table: TableDefinition
        let map: ShardMap

        /// The store of `key`'s owner.
        func owner(_ key: String) throws -> MemoryShardStore { try #require(stores[map.owner(of: KeyHash.of(key))]) }

        /// Every live copy of row `pk` on any shard, as (shard key, row).
        func liveCopies(_ pk: String) -> [StoredRow] {
            stores.values.flatMap(\.allRows).filter { $0.table == table.storage && LookupEntry.unslot($0.pk)?.pk == pk && !$0.isDeleted }
        }

        func put(_ pk: String, customer: String, n: Int) async throws -> WriteReceipt {
            try await router.put(table: "orders", pk: pk, body: Array("{\"id\":\"\(pk)\",\"customer_id\":\"\(customer)\",\"n\":\(n)}".utf8))
        }

        func listed(_ customer: String) async throws -> [String] {
            try await router.list(table: "orders", shardKey: customer, limit: 1_000).map(\.pk)
        }
    }

    static func cluster(shards: Int = 4, faults: MemoryShardStore.Faults? = nil) async throws -> Cluster {
        let ids = (1...shards).map { ShardID("s\($0)")! }
        let stores = Dictionary(uniqueKeysWithValues: ids.map { ($0, MemoryShardStore(shardID: $0, faults: faults)) })
        let map = try RingPlacement(virtualNodes: 16).shardMap(for: ids, generation: 1)
        let first = try #require(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "id"))
        let table = try #require(first.relaid(by: "customer_id"))
        for store in stores.values { for storage in table.storages { try await store.ensureTable(storage) } }
        let router = try await MemoryRouter.make(stores, map: map) { try await $0.createTable(table) }.router
        return Cluster(router: router, stores: stores, table: table, map: map)
    }

    @Test func rowsLandUnderTheirShardKeyAndAreReadByPrimaryKey() async throws {
        let cluster = try await Self.cluster()
        let receipt = try await cluster.put("o1", customer: "c7", n: 1)
        #expect(receipt.shard == cluster.map.owner(of: KeyHash.of("c7")))
        #expect(try cluster.owner("c7").row(table: cluster.table.storage, pk: LookupEntry.slot(pk: "o1", key: "c7"))?.shardKey == "c7")
        let lookup = try #require(cluster.table.lookup)
        let entry = try #require(cluster.owner("o1").row(table: lookup, pk: "o1"))
        #expect(LookupEntry(row: entry) == LookupEntry(key: "c7", previous: nil, version: receipt.version))

        let read = try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil)
        #expect(read.version == receipt.version && read.body.contains("\"n\":1") && read.shard == receipt.shard)
        #expect(try await cluster.router.get(table: "orders", pk: "o1", shardKey: "c7").version == receipt.version)
        await #expect(throws: RouterError.rowNotFound) { try await cluster.router.get(table: "orders", pk: "o1", shardKey: "c8") }
        await #expect(throws: RouterError.rowNotFound) { try await cluster.router.get(table: "orders", pk: "o2", shardKey: nil) }
        #expect(try await cluster.listed("c7") == ["o1"])
    }

    @Test func anUpdateOfTheShardKeyMovesTheRow() async throws {
        let cluster = try await Self.cluster()
        _ = try await cluster.put("o1", customer: "c1", n: 1)
        // Find a second customer on another shard, so the move crosses shards.
        let other = try #require(
            (2..<200).map { "c\($0)" }.first { cluster.map.owner(of: KeyHash.of($0)) != cluster.map.owner(of: KeyHash.of("c1")) })
        let moved = try await cluster.put("o1", customer: other, n: 2)
        #expect(try await cluster.listed("c1") == [])
        #expect(try await cluster.listed(other) == ["o1"])
        #expect(cluster.liveCopies("o1").map(\.shardKey) == [other])
        let read = try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil)
        #expect(read.version == moved.version && read.body.contains("\"n\":2"))
        // And back, then an update in place.
        _ = try await cluster.put("o1", customer: "c1", n: 3)
        let last = try await cluster.put("o1", customer: "c1", n: 4)
        #expect(cluster.liveCopies("o1").map(\.shardKey) == ["c1"])
        #expect(try await cluster.listed(other) == [])
        #expect(try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil).version == last.version)
    }

    @Test func aDeleteLeavesNothingAndAWriteAfterItStartsAfresh() async throws {
        let cluster = try await Self.cluster()
        _ = try await cluster.put("o1", customer: "c1", n: 1)
        await #expect(throws: RouterError.rowNotFound) { try await cluster.router.delete(table: "orders", pk: "o1", shardKey: "c2") }
        let deleted = try await cluster.router.delete(table: "orders", pk: "o1", shardKey: nil)
        #expect(deleted.shard == cluster.map.owner(of: KeyHash.of("c1")))
        await #expect(throws: RouterError.rowNotFound) { try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil) }
        #expect(cluster.liveCopies("o1").isEmpty)
        #expect(try await cluster.listed("c1") == [])
        // The finished entry is a tombstone, which garbage collection can purge.
        let lookup = try #require(cluster.table.lookup)
        #expect(try cluster.owner("o1").row(table: lookup, pk: "o1")?.isDeleted == true)
        await #expect(throws: RouterError.rowNotFound) { try await cluster.router.delete(table: "orders", pk: "o1", shardKey: nil) }
        await #expect(throws: RouterError.rowNotFound) { try await cluster.router.delete(table: "orders", pk: "never", shardKey: nil) }
        #expect(try cluster.owner("never").row(table: lookup, pk: "never") == nil, "a delete of nothing writes nothing")
        let again = try await cluster.put("o1", customer: "c3", n: 5)
        #expect(again.version > deleted.version)
        #expect(try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil).body.contains("\"n\":5"))
    }

    /// A lookup entry damaged on disk (a body no writer makes, control characters included) is
    /// answered 503 corrupt_lookup by reads and writes, never a crash, and nothing is written.
    @Test func aDamagedLookupEntryIsRefusedNotTrusted() async throws {
        let cluster = try await Self.cluster()
        let lookup = try #require(cluster.table.lookup)
        for body in ["c1", "c1\nc2\nc3", "\u{1}\n", "{\"k\":\"c1\"}", "c1\u{7F}\n"] {
            try cluster.owner("o9").plant(StoredRow(table: lookup, pk: "o9", shardKey: "o9", version: 5, body: body))
            await #expect(throws: RouterError.corruptLookup(lookup, pk: "o9")) {
                try await cluster.router.get(table: "orders", pk: "o9", shardKey: nil)
            }
            await #expect(throws: RouterError.corruptLookup(lookup, pk: "o9")) { try await cluster.put("o9", customer: "c1", n: 1) }
            #expect(cluster.liveCopies("o9").isEmpty, "nothing written over a damaged entry")
            #expect(try cluster.owner("o9").row(table: lookup, pk: "o9")?.body == body)
        }
    }

    /// A writer that claimed the next version and stopped (its process died) before its row
    /// landed: readers answer the row as it was, and the next writer blocks the lost write, so it
    /// can never land later, and leaves exactly one copy.
    @Test func aWriterThatStoppedAfterItsClaimLeavesTheRowAsItWas() async throws {
        // While the next write places its row, a reader reads: it must see the row as it was.
        let probe = ProbeRead()
        let cluster = try await Self.cluster(faults: { shard, operation in
            guard operation == .place, shard == probe.armedShard else { return }
            await probe.fire()
        })
        let first = try await cluster.put("o1", customer: "c1", n: 1)
        let lookup = try #require(cluster.table.lookup)
        // The dead writer's claim: a move to c2 that never landed.
        let claim = LookupEntry(key: "c2", previous: "c1", version: first.version + 10).row(table: lookup, pk: "o1")
        #expect(
            try await cluster.owner("o1").place(Placement(row: claim, expected: .version(first.version), generation: 1))
                == .written(version: first.version + 10))

        let read = try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil)
        #expect(read.version == first.version && read.body.contains("\"n\":1"), "the row before the lost write")
        #expect(try await cluster.listed("c1") == ["o1"])
        #expect(try await cluster.listed("c2") == [])

        // The lost write's row arriving now would be refused once the next write blocked it.
        let owners = Set(["o1", "c1", "c2"].map { cluster.map.owner(of: KeyHash.of($0)) })
        let target = try #require((3..<500).map { "c\($0)" }.first { !owners.contains(cluster.map.owner(of: KeyHash.of($0))) })
        probe.arm(cluster.map.owner(of: KeyHash.of(target))) {
            try? await cluster.router.get(table: "orders", pk: "o1", shardKey: nil)
        }
        let next = try await cluster.put("o1", customer: target, n: 2)
        let during = try #require(probe.result, "the probe read ran while the row was placed")
        #expect(during?.version == first.version && during?.body.contains("\"n\":1") == true, "the row as it was, mid-write")
        let late = StoredRow(
            table: cluster.table.storage, pk: LookupEntry.slot(pk: "o1", key: "c2"), shardKey: "c2", version: first.version + 10, body: "{}"
        )
        #expect(try await cluster.owner("c2").place(Placement(row: late, generation: 1)) != .written(version: first.version + 10))
        #expect(cluster.liveCopies("o1").map(\.shardKey) == [target])
        #expect(try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil).version == next.version)
    }

    /// A writer whose row landed under its new key but that stopped before tombstoning the old
    /// place: readers answer the new row, and the next write removes the copy left behind.
    @Test func aWriterThatStoppedAfterItsRowLeavesTheNextWriterToTidy() async throws {
        let cluster = try await Self.cluster()
        let first = try await cluster.put("o1", customer: "c1", n: 1)
        let lookup = try #require(cluster.table.lookup)
        let version = first.version + 10
        let claim = LookupEntry(key: "c2", previous: "c1", version: version).row(table: lookup, pk: "o1")
        _ = try await cluster.owner("o1").place(Placement(row: claim, expected: .version(first.version), generation: 1))
        let landed = StoredRow(
            table: cluster.table.storage, pk: LookupEntry.slot(pk: "o1", key: "c2"), shardKey: "c2", version: version,
            body: "{\"id\":\"o1\",\"customer_id\":\"c2\",\"n\":9}"
        )
        _ = try await cluster.owner("c2").place(Placement(row: landed, generation: 1))

        let read = try await cluster.router.get(table: "orders", pk: "o1", shardKey: nil)
        #expect(read.version == version && read.body.contains("\"n\":9"))
        #expect(Set(cluster.liveCopies("o1").map(\.shardKey)) == ["c1", "c2"], "the copy left behind, until the next write")

        _ = try await cluster.put("o1", customer: "c2", n: 10)
        #expect(cluster.liveCopies("o1").map(\.shardKey) == ["c2"])
        #expect(try await cluster.listed("c1") == [])
    }

    /// Writers of the same few keys race, each store operation a possible switch point; then
    /// every key reads as its newest acknowledged write, and lives in exactly the place it reads
    /// from (or nowhere).
    @Test(arguments: 1...6)
    func concurrentWritersOfTheSameKeysConverge(seed: UInt64) async throws {
        let yields = Mutex(SeededRandom(seed: seed))
        let cluster = try await Self.cluster(faults: { _, _ in
            let spins = yields.withLock { Int($0.next() % 3) }
            for _ in 0..<spins { await Task.yield() }
        })
        let pks = ["o1", "o2", "o3"]
        let customers = ["c1", "c2", "c3", "c4", "c5"]
        // Per key: the newest acknowledged version and whether it was a delete.
        let acknowledged = Tally()
        let history = History()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<2 {
                group.addTask {
                    var random = SeededRandom(seed: seed &* 131 &+ UInt64(reader))
                    for _ in 0..<60 {
                        let pk = pks[Int(random.next() % UInt64(pks.count))]
                        let start = history.tick()
                        do {
                            let read = try await cluster.router.get(table: "orders", pk: pk, shardKey: nil)
                            history.read(pk, start: start, end: history.tick(), version: read.version)
                        } catch let error as RouterError where error == .rowNotFound {
                            history.read(pk, start: start, end: history.tick(), version: nil)
                        } catch let error as RouterError where error.code == "key_contended" {
                            // Overtaken again and again: a retryable 503, which claims nothing.
                            history.contended()
                        }
                    }
                }
            }
            for writer in 0..<6 {
                group.addTask {
                    var random = SeededRandom(seed: seed &* 31 &+ UInt64(writer))
                    for step in 0..<40 {
                        let pk = pks[Int(random.next() % UInt64(pks.count))]
                        let deleted = random.next() % 5 == 0
                        let start = history.tick()
                        do {
                            let receipt: WriteReceipt
                            if deleted {
                                receipt = try await cluster.router.delete(table: "orders", pk: pk, shardKey: nil)
                            } else {
                                let customer = customers[Int(random.next() % UInt64(customers.count))]
                                receipt = try await cluster.put(pk, customer: customer, n: writer * 1_000 + step)
                            }
                            acknowledged.record(pk, version: receipt.version, deleted: deleted)
                            history.write(pk, start: start, end: history.tick(), version: receipt.version, deleted: deleted)
                        } catch let error as RouterError where error == .rowNotFound || error.code == "key_contended" {
                            // Refused or overtaken: nothing of it is visible, and the checks below say so.
                            history.write(pk, start: start, end: nil, version: nil, deleted: deleted)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // Every read saw at least the newest write acknowledged before it began, and found no row
        // only when that write, or one running alongside the read, was a delete.
        let problems = history.problems()
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(history.contendedReads < 10, "reads are rarely overtaken eight times in a row")
        for pk in pks {
            let newest = acknowledged.newest(pk)
            let copies = cluster.liveCopies(pk)
            if let read = try? await cluster.router.get(table: "orders", pk: pk, shardKey: nil) {
                #expect(read.version == newest?.version && newest?.deleted == false, "\(pk) reads its newest write")
                #expect(copies.count == 1 && copies.first?.version == read.version, "\(pk): one live copy, the one read")
                let customer = try #require(copies.first?.shardKey)
                #expect(try await cluster.listed(customer).contains(pk))
            } else {
                #expect(newest == nil || newest?.deleted == true, "\(pk) is gone only after a delete")
                #expect(copies.isEmpty, "\(pk): no live copy of a deleted row")
            }
            for customer in customers where !copies.contains(where: { $0.shardKey == customer }) {
                #expect(try await !cluster.listed(customer).contains(pk), "\(pk) is not listed under \(customer)")
            }
        }
    }

    /// One read run from inside a store operation (the fault hook), once.
    final class ProbeRead: Sendable {
        private struct State {
            var shard: ShardID?
            var read: (@Sendable () async -> RowRead?)?
            var result: RowRead??
        }
        private let state = Mutex(State())

        var armedShard: ShardID? { state.withLock { $0.shard } }
        var result: RowRead?? { state.withLock { $0.result } }

        func arm(_ shard: ShardID, _ read: @escaping @Sendable () async -> RowRead?) {
            state.withLock { $0 = State(shard: shard, read: read, result: nil) }
        }

        func fire() async {
            let read = state.withLock { state in
                defer { state.read = nil }
                return state.read
            }
            guard let read else { return }
            let found = await read()
            state.withLock { $0.result = .some(found) }
        }
    }

    /// Reads and writes with logical start and end times, for the read checks.
    final class History: Sendable {
        struct Write {
            let pk: String
            let start: Int
            let end: Int?
            let version: UInt64?
            let deleted: Bool
        }
        struct Read {
            let pk: String
            let start: Int
            let end: Int
            let version: UInt64?
        }
        private let state = Mutex((clock: 0, writes: [Write](), reads: [Read](), contendedReads: 0))

        /// Reads that ended in 503 key_contended.
        var contendedReads: Int { state.withLock { $0.contendedReads } }

        func contended() { state.withLock { $0.contendedReads += 1 } }

        func tick() -> Int {
            state.withLock { state in
                state.clock += 1
                return state.clock
            }
        }

        func write(_ pk: String, start: Int, end: Int?, version: UInt64?, deleted: Bool) {
            state.withLock { $0.writes.append(Write(pk: pk, start: start, end: end, version: version, deleted: deleted)) }
        }

        func read(_ pk: String, start: Int, end: Int, version: UInt64?) {
            state.withLock { $0.reads.append(Read(pk: pk, start: start, end: end, version: version)) }
        }

        func problems() -> [String] {
            let (writes, reads) = state.withLock { ($0.writes, $0.reads) }
            var problems: [String] = []
            for read in reads {
                let mine = writes.filter { $0.pk == read.pk }
                let before = mine.filter { ($0.end ?? .max) < read.start }.max { ($0.version ?? 0) < ($1.version ?? 0) }
                if let version = read.version {
                    if let before, let floor = before.version, version < floor {
                        problems.append("\(read.pk) read v\(version) after v\(floor) was acknowledged")
                    }
                } else if let before, !before.deleted {
                    let deleteAlongside = mine.contains { $0.deleted && $0.start < read.end && ($0.end ?? .max) > read.start }
                    if !deleteAlongside {
                        let around = mine.filter { $0.start < read.end && ($0.end ?? .max) > before.start }.map {
                            "\($0.deleted ? "del" : "put") [\($0.start),\($0.end.map(String.init) ?? "-")] v\($0.version.map(String.init) ?? "-")"
                        }
                        problems.append(
                            "\(read.pk) not found [\(read.start),\(read.end)] after v\(before.version ?? 0) was acknowledged: \(around)")
                    }
                }
            }
            return problems
        }
    }

    /// The newest acknowledged write of each key.
    final class Tally: Sendable {
        private let known = Mutex([String: (version: UInt64, deleted: Bool)]())

        func record(_ pk: String, version: UInt64, deleted: Bool) {
            known.withLock { known in
                if version > known[pk]?.version ?? 0 { known[pk] = (version, deleted) }
            }
        }

        func newest(_ pk: String) -> (version: UInt64, deleted: Bool)? { known.withLock { $0[pk] } }
    }
}
