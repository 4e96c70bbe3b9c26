import Foundation
import ReshardCore
import Testing

@Suite struct PrimaryKeyLookupTests {
    let table = TableName("orders__k2")!

    func row(_ version: UInt64, _ body: String? = "{}", key: String = "c1") -> StoredRow {
        StoredRow(table: TableName("orders__g2")!, pk: "o1", shardKey: key, version: version, body: body)
    }

    @Test func anEntryRoundTripsThroughItsLookupRow() throws {
        let entries = [
            LookupEntry(key: "c1", previous: nil, version: 5), LookupEntry(key: "c2", previous: "c1", version: 6),
            LookupEntry(key: nil, previous: "c2", version: 7), LookupEntry(key: nil, previous: nil, version: 8),
            LookupEntry(key: "🦀 key", previous: String(repeating: "é", count: 256), version: UInt64.max),
        ]
        for entry in entries {
            let stored = entry.row(table: table, pk: "o1")
            #expect(stored.shardKey == "o1", "placed by its primary key")
            #expect(stored.version == entry.version)
            #expect(LookupEntry(row: stored) == entry)
        }
    }

    @Test func aTombstoneOrAForeignBodyIsNoEntry() {
        let base = StoredRow(table: table, pk: "o1", shardKey: "o1", version: 3, body: nil)
        #expect(LookupEntry(row: base) == nil)
        for body in ["", "c1", "c1\nc2\nc3", "a\u{1}b\n", "{\"k\":1}"] {
            var stored = base
            stored.body = body
            #expect(LookupEntry(row: stored) == nil, "\(body.debugDescription)")
        }
    }

    @Test func eachPrimaryKeyAndShardKeyPairHasASlotOfItsOwn() {
        let pairs = [("o1", "c1"), ("c1", "o1"), ("1:x", "y"), ("y", "1:x"), ("🦀", "é:é"), ("a", String(repeating: "k", count: 512))]
        var slots: Set<String> = []
        for (pk, key) in pairs {
            let slot = LookupEntry.slot(pk: pk, key: key)
            #expect(LookupEntry.unslot(slot)! == (pk, key))
            #expect(RowKey.problem(slot, limit: RowKey.maxStoredBytes) == nil)
            slots.insert(slot)
        }
        #expect(slots.count == pairs.count)
        let longest = LookupEntry.slot(pk: String(repeating: "p", count: 512), key: String(repeating: "k", count: 512))
        #expect(longest.utf8.count <= RowKey.maxStoredBytes)
        // Rows of one shard key list in primary-key order.
        #expect(
            ["b", "a", "ab"].map { LookupEntry.slot(pk: $0, key: "c9") }.sorted()
                == ["a", "ab", "b"].map { LookupEntry.slot(pk: $0, key: "c9") })
        for foreign in ["", "o1", ":x", "0:x", "01:ab", "+1:ab", "2:ab", "9999:ab", "1:"] {
            #expect(LookupEntry.unslot(foreign) == nil, "\(foreign)")
        }
    }

    @Test func aReaderAnswersTheLandedWriteOrTheRowBeforeIt() {
        let settled = LookupEntry(key: "c1", previous: "c1", version: 10)
        #expect(PrimaryKeyLookup.firstRead(settled) == "c1")
        #expect(PrimaryKeyLookup.afterFirst(settled, row: row(10)) == .answer(row(10)))
        // In flight at the same place: the row before it.
        #expect(PrimaryKeyLookup.afterFirst(settled, row: row(9)) == .answer(row(9)))
        #expect(PrimaryKeyLookup.afterFirst(settled, row: row(11)) == .retry)

        let inserted = LookupEntry(key: "c1", previous: nil, version: 10)
        #expect(PrimaryKeyLookup.afterFirst(inserted, row: nil) == .answer(nil), "an insert in flight: not found yet")

        let moved = LookupEntry(key: "c2", previous: "c1", version: 10)
        #expect(moved.moved)
        #expect(PrimaryKeyLookup.afterFirst(moved, row: row(10, key: "c2")) == .answer(row(10, key: "c2")))
        #expect(PrimaryKeyLookup.afterFirst(moved, row: nil) == .readPrevious("c1"))
        #expect(PrimaryKeyLookup.afterFirst(moved, row: row(4, nil, key: "c2")) == .readPrevious("c1"), "an old tombstone there")
        #expect(PrimaryKeyLookup.afterPrevious(moved, row: row(9)) == .answer(row(9)))
        #expect(PrimaryKeyLookup.afterPrevious(moved, row: row(10, nil)) == .retry, "tombstoned by the write: it landed")
        // A later writer blocked the move: it never lands, the row stayed where it was.
        #expect(PrimaryKeyLookup.afterFirst(moved, row: row(10, nil, key: "c2")) == .readPrevious("c1"))
        #expect(PrimaryKeyLookup.landing(of: 10, at: row(10, nil)) == .blocked)
        #expect(PrimaryKeyLookup.landing(of: 10, at: row(10)) == .landed)
        #expect(PrimaryKeyLookup.landing(of: 10, at: row(11, nil)) == .landed, "a later write replaced it")
        #expect(PrimaryKeyLookup.landing(of: 10, at: row(9)) == .unknown)
        #expect(PrimaryKeyLookup.landing(of: 10, at: nil) == .unknown)

        let deleted = LookupEntry(key: nil, previous: "c1", version: 10)
        #expect(PrimaryKeyLookup.firstRead(deleted) == "c1")
        #expect(PrimaryKeyLookup.afterFirst(deleted, row: row(10, nil)) == .answer(nil))
        #expect(PrimaryKeyLookup.afterFirst(deleted, row: row(9)) == .answer(row(9)), "the delete is in flight")
        #expect(PrimaryKeyLookup.firstRead(LookupEntry(key: nil, previous: nil, version: 3)) == nil)
    }

    @Test func aWriterChecksTheLandingOfAMoveOnly() {
        #expect(PrimaryKeyLookup.truth(nil) == .known(nil))
        #expect(PrimaryKeyLookup.truth(LookupEntry(key: "c1", previous: nil, version: 4)) == .known("c1"))
        #expect(PrimaryKeyLookup.truth(LookupEntry(key: "c1", previous: "c1", version: 4)) == .known("c1"))
        #expect(PrimaryKeyLookup.truth(LookupEntry(key: nil, previous: "c1", version: 4)) == .known("c1"))
        #expect(
            PrimaryKeyLookup.truth(LookupEntry(key: "c2", previous: "c1", version: 4))
                == .checkLanding(key: "c2", previous: "c1", version: 4))
    }

    @Test func aWriteTombstonesEveryPlaceTheEntryNamesButItsOwn() {
        let moved = LookupEntry(key: "c2", previous: "c1", version: 4)
        #expect(PrimaryKeyLookup.leftBehind(moved, newKey: "c3") == ["c2", "c1"])
        #expect(PrimaryKeyLookup.leftBehind(moved, newKey: "c1") == ["c2"])
        #expect(PrimaryKeyLookup.leftBehind(moved, newKey: nil) == ["c2", "c1"])
        #expect(PrimaryKeyLookup.leftBehind(LookupEntry(key: "c1", previous: "c1", version: 4), newKey: "c1") == [])
        #expect(PrimaryKeyLookup.leftBehind(nil, newKey: "c1") == [])
    }

    @Test func placementDecidesOneWayOnEveryBackend() {
        let stored: [UInt64?] = [nil, 0, 5, 6, UInt64.max]
        for version in stored {
            let exact = Placement(row: row(6), generation: nil).decide(stored: version)
            if let version, version >= 6 {
                #expect(exact.outcome == .notNewer(stored: version) && exact.write == nil)
            } else {
                #expect(exact == (.written(version: 6), 6))
            }
            let assigned = Placement(row: row(6), assignsVersion: true, generation: 1).decide(stored: version)
            let expected = VersionRule.next(current: version, proposed: 6)
            #expect(assigned.write == expected)
            let cas = Placement(row: row(6), expected: .version(5), generation: 1).decide(stored: version)
            #expect(cas.outcome == (version == 5 ? .written(version: 6) : .conflict(stored: version)))
            let absent = Placement(row: row(6), expected: .absent, generation: 1).decide(stored: version)
            #expect(absent.outcome == (version == nil ? .written(version: 6) : .conflict(stored: version)))
        }
    }

    @Test func aLayoutHasStorageOfItsOwnAndClientsCannotNameIt() throws {
        let orders = try #require(TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "id"))
        #expect(orders.layoutGeneration == 1 && orders.storage.rawValue == "orders" && orders.lookup == nil)
        let byCustomer = try #require(orders.relaid(by: "customer_id"))
        #expect(byCustomer.layoutGeneration == 2 && byCustomer.shardKey == "customer_id")
        #expect(byCustomer.storage.rawValue == "orders__g2" && byCustomer.lookup?.rawValue == "orders__k2")
        #expect(byCustomer.storages.map(\.rawValue) == ["orders__g2", "orders__k2"])
        let back = try #require(byCustomer.relaid(by: "id"))
        #expect(back.layoutGeneration == 3 && back.lookup == nil && back.storage.rawValue == "orders__g3")
        #expect(orders.relaid(by: "Bad") == nil)
        #expect(!byCustomer.storage.isClientName && orders.storage.isClientName)

        // The longest names still fit and never share storage.
        let long1 = TableName(String(repeating: "a", count: 63))!
        let long2 = TableName(String(repeating: "a", count: 62) + "b")!
        let names = [long1, long2].map { TableName.layoutStorage(of: $0, generation: UInt64.max, role: .lookup) }
        #expect(names[0] != names[1])
        for name in names { #expect(name.rawValue.utf8.count <= 63 && TableName(name.rawValue) == name) }
    }

    @Test func aDefinitionSavedBeforeLayoutsDecodesAtItsFirstLayout() throws {
        let old = Data(#"{"name":"orders","primary_key":"id","shard_key":"customer_id"}"#.utf8)
        let decoded = try JSONDecoder().decode(TableDefinition.self, from: old)
        #expect(decoded == TableDefinition(name: TableName("orders")!, primaryKey: "id", shardKey: "customer_id"))
        let relaid = try #require(decoded.relaid(by: "region"))
        #expect(try JSONDecoder().decode(TableDefinition.self, from: JSONEncoder().encode(relaid)) == relaid)
        let zero = Data(#"{"name":"orders","primary_key":"id","shard_key":"id","layout_generation":0}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(TableDefinition.self, from: zero) }
        let badStorage = Data(#"{"name":"orders","primary_key":"id","shard_key":"id","storage":"Robert'); DROP"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(TableDefinition.self, from: badStorage) }
    }
}
