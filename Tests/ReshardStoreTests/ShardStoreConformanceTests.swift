import ReshardCore
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

/// The contract of `ShardStore`, run against every backend.
@Suite struct ShardStoreConformanceTests {
    let users = TableName("users")!
    let orders = TableName("orders")!

    func write(_ pk: String, key: String? = nil, body: String? = "{}", proposed: UInt64 = 1, generation: UInt64 = 1) -> ClientWrite {
        ClientWrite(table: users, pk: pk, shardKey: key ?? pk, body: body, proposedVersion: proposed, generation: generation)
    }

    func row(_ pk: String, version: UInt64, body: String? = "{}", key: String? = nil) -> StoredRow {
        StoredRow(table: users, pk: pk, shardKey: key ?? pk, version: version, body: body)
    }

    @Test(arguments: ShardBackend.available)
    func clientWriteVersionIsMaxOfCurrentPlusOneAndProposed(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            #expect(try await store.write(write("a", proposed: 100)) == .created(version: 100))
            #expect(try await store.write(write("a", proposed: 50)) == .written(version: 101))
            #expect(try await store.write(write("a", proposed: 500)) == .written(version: 500))
            let stored = try await store.get(table: users, pk: "a")
            #expect(stored?.version == 500)
            #expect(stored?.body == "{}")
        }
    }

    @Test(arguments: ShardBackend.available)
    func applyNeverReplacesAnEqualOrNewerVersion(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            #expect(try await store.apply([row("a", version: 10, body: "{\"v\":10}")]) == 1)
            #expect(try await store.apply([row("a", version: 10, body: "{\"v\":\"other\"}")]) == 0)
            #expect(try await store.apply([row("a", version: 9, body: "{\"v\":9}")]) == 0)
            #expect(try await store.get(table: users, pk: "a")?.body == "{\"v\":10}")
            #expect(try await store.apply([row("a", version: 11, body: "{\"v\":11}"), row("a", version: 11, body: "{}")]) == 1)
            #expect(try await store.get(table: users, pk: "a")?.body == "{\"v\":11}")
        }
    }

    /// Applies in any order, several at once (SQLite writes what queued in one transaction, in
    /// primary-key order), leave each key at its newest version, the first of equal versions,
    /// and count each apply's own changes. Keys differ in ways byte order and text order disagree
    /// on (case, non-ASCII, a prefix of another).
    @Test(arguments: ShardBackend.available)
    func concurrentUnorderedAppliesKeepTheNewestOfEachKey(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let keys = ["b", "B", "a", "ab", "a\u{e9}", "\u{e9}", "z9", "z10", "\u{1F600}", "k"]
            // Each batch writes every key twice, newer first, then an equal version with another body.
            let batches: [[StoredRow]] = (0..<8).map { batch in
                keys.reversed().flatMap { key in
                    let version = UInt64(10 + (batch * 7 + key.unicodeScalars.count * 3) % 8)
                    return [
                        row(key, version: version, body: "{\"b\":\(batch)}"), row(key, version: version - 1, body: "{\"old\":true}"),
                        row(key, version: version, body: "{\"second\":\(batch)}"),
                    ]
                }
            }
            let changed = try await withThrowingTaskGroup(of: Int.self) { group in
                for rows in batches { group.addTask { try await store.apply(rows) } }
                var total = 0
                for try await count in group { total += count }
                return total
            }
            #expect(changed >= keys.count)
            for key in keys {
                let newest = batches.flatMap { $0 }.filter { $0.pk == key }.map(\.version).max()
                let stored = try await store.get(table: users, pk: key)
                #expect(stored?.version == newest, "\(key)")
                // Whichever batch landed it, its first row of that version, never the equal one after it.
                #expect(stored?.body?.hasPrefix("{\"b\":") == true, "\(key): \(stored?.body ?? "nil")")
            }
        }
    }

    /// Applies that run at once over the same keys, given in opposite orders (a copy chunk in
    /// hash order, a changelog batch in commit order), never deadlock: PostgreSQL reported
    /// "deadlock detected" every few cutovers under writes into the moving range until applies
    /// went in primary-key order.
    @Test(arguments: ShardBackend.available)
    func concurrentAppliesOverTheSameKeysInOppositeOrdersDoNotDeadlock(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            for round in 0..<12 {
                // Both sizes: the single statement, and the bulk path from 256 rows.
                let count = round % 2 == 0 ? 120 : 300
                let keys = (0..<count).map { "r\(round)-\($0)" }
                let base = UInt64(round * 10 + 1)
                try await withThrowingTaskGroup(of: Int.self) { group in
                    group.addTask { try await store.apply(keys.map { self.row($0, version: base) }) }
                    group.addTask { try await store.apply(keys.reversed().map { self.row($0, version: base + 1) }) }
                    group.addTask { try await store.apply(keys.shuffled().map { self.row($0, version: base + 2) }) }
                    try await group.waitForAll()
                }
                for key in [keys[0], keys[count / 2], keys[count - 1]] {
                    #expect(try await store.get(table: users, pk: key)?.version == base + 2)
                }
            }
        }
    }

    /// A router's second write keeps the old owner's version, obeys the version rule like a copy,
    /// and is refused, with nothing written, on a range fenced above the generation it was
    /// routed by (a rolled-back migration's copies).
    @Test(arguments: ShardBackend.available)
    func aSecondWriteKeepsItsVersionAndStopsAtAFenceAboveItsGeneration(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let stream = try #require(ChangeStreamID("second_writes"))
            let start = try await store.openChangeStream(stream)
            #expect(try await store.writeSecond(row("a", version: 40, body: "{\"v\":40}"), routedBy: 3))
            #expect(try await store.get(table: users, pk: "a") == row("a", version: 40, body: "{\"v\":40}"))
            #expect(try await !store.writeSecond(row("a", version: 40, body: "{\"v\":\"same\"}"), routedBy: 3), "equal version: no change")
            #expect(try await !store.writeSecond(row("a", version: 39, body: "{}"), routedBy: 3), "older: no change")
            #expect(try await store.writeSecond(row("a", version: 41, body: nil), routedBy: 3), "a delete is a tombstone")
            #expect(try await store.get(table: users, pk: "a")?.isDeleted == true)
            #expect(try await !store.writeSecond(row("a", version: 40, body: "{}"), routedBy: 3), "no resurrection")

            let hash = KeyHash.of("b")
            try await store.fence([HashRange(start: hash, last: hash)], generation: 4)
            await #expect(throws: StoreError.self) { try await store.writeSecond(row("b", version: 50), routedBy: 3) }
            #expect(try await store.get(table: users, pk: "b") == nil, "nothing written behind the fence")
            #expect(try await store.writeSecond(row("b", version: 50), routedBy: 4), "routed by the fence's generation: written")
            #expect(try await store.writeSecond(row("c", version: 1), routedBy: 3), "another range is not fenced")
            // Like a copy, a second write is no client change: the shard's own stream may carry it
            // (PostgreSQL's logical decoding cannot leave it out) but changes nothing applied back.
            let batch = try await store.changes(stream, after: start, through: nil, limit: 100)
            for change in batch.changes {
                #expect(try await store.apply([change.row]) == 0, "\(change.row.pk) applied back changes nothing")
            }
            try await store.closeChangeStream(stream)
        }
    }

    @Test(arguments: ShardBackend.available)
    func tombstonesOutliveOlderCopies(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            #expect(try await store.write(write("gone", body: nil)) == .notFound)
            #expect(try await store.get(table: users, pk: "gone") == nil)
            guard case .created(let created) = try await store.write(write("a", proposed: 10)) else {
                Issue.record("write failed")
                return
            }
            guard case .written(let deleted) = try await store.write(write("a", body: nil, proposed: 5)) else {
                Issue.record("delete failed")
                return
            }
            #expect(deleted > created)
            #expect(try await store.write(write("a", body: nil)) == .notFound)
            // A late copy of the live row must not resurrect it.
            #expect(try await store.apply([row("a", version: created, body: "{}")]) == 0)
            let tombstone = try await store.get(table: users, pk: "a")
            #expect(tombstone?.isDeleted == true)
            #expect(tombstone?.version == deleted)
            // A newer write after the delete is a legitimate re-insert.
            if case .created(let again) = try await store.write(write("a", proposed: 1)) { #expect(again == deleted + 1) }
        }
    }

    /// Keys round-trip byte for byte or are refused before any SQL, the same way on every
    /// backend: SQLite's text binding used to end `victim\0x` at its NUL and overwrite `victim`.
    @Test(arguments: ShardBackend.available)
    func keysAreStoredExactlyOrRefusedAlike(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            #expect(try await store.write(write("victim", body: #"{"v":"original"}"#)) != .notFound)
            let exact = [
                "é", "日本語", "😀🇫🇷", "a b+c%20/d?e#f", "\u{FEFF}bom", String(repeating: "k", count: RowKey.maxBytes),
                String(repeating: "😀", count: RowKey.maxBytes / 4),
            ]
            for key in exact {
                guard let version = try await store.write(write(key, body: #"{"k":1}"#)).version else {
                    Issue.record("\(key) not written")
                    continue
                }
                let stored = try await store.get(table: users, pk: key)
                #expect(stored?.pk == key)
                #expect(stored?.pk.utf8.count == key.utf8.count)
                #expect(stored?.version == version)
                #expect(try await store.read(table: users, pk: key, shardKey: key).value?.pk == key)
            }
            let scanned = try await store.scan(table: users, range: .full, after: nil, limit: 100).map(\.pk)
            #expect(Set(scanned) == Set(exact + ["victim"]))

            let hostile = [
                "victim\u{0}x", "\u{0}", "victim\u{1}", "tab\tkey", "line\nkey", "del\u{7F}", "c1\u{85}",
                String(repeating: "k", count: RowKey.maxStoredBytes + 1), "",
            ]
            for key in hostile {
                for attempt in [write(key, body: #"{"v":"evil"}"#), write(key, body: nil), write("victim", key: key)] {
                    await #expect(throws: StoreError.self, "\(key.unicodeScalars.map(\.value))") { try await store.write(attempt) }
                }
                await #expect(throws: StoreError.self) { try await store.get(table: users, pk: key) }
                await #expect(throws: StoreError.self) { try await store.read(table: users, pk: key, shardKey: "victim") }
                await #expect(throws: StoreError.self) { try await store.rows(table: users, shardKey: key, after: nil, limit: 10) }
            }
            await #expect(throws: StoreError.self) { try await store.write(write("victim", body: "{\"v\":\"a\u{0}b\"}")) }
            let victim = try await store.get(table: users, pk: "victim")
            #expect(victim?.body == #"{"v":"original"}"#)
            #expect(try await store.scan(table: users, range: .full, after: nil, limit: 100).count == exact.count + 1)
        }
    }

    @Test(arguments: ShardBackend.available)
    func chunkedScansReturnTheRangeInHashThenPkOrder(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            // Groups of rows share a shard key, so the cursor must break ties on pk.
            let rows: [StoredRow] = (0..<600).map { (n: Int) -> StoredRow in
                let body: String? = n % 7 == 0 ? nil : "{\"n\":\(n)}"
                return row("pk\(n)", version: UInt64(n + 1), body: body, key: "k\(n / 3)")
            }
            #expect(try await store.apply(rows) == rows.count)
            var random = SeededRandom(seed: 21)
            for _ in 0..<8 {
                let a = random.next()
                let b = random.next()
                let range = HashRange(start: min(a, b), last: max(a, b))
                let expected = rows.filter { range.contains($0.hash) }.sorted {
                    ScanCursor(hash: $0.hash, pk: $0.pk) < ScanCursor(hash: $1.hash, pk: $1.pk)
                }
                var scanned: [StoredRow] = []
                var cursor: ScanCursor?
                while true {
                    let chunk = try await store.scan(table: users, range: range, after: cursor, limit: 37)
                    scanned += chunk
                    guard let last = chunk.last, chunk.count == 37 else { break }
                    cursor = ScanCursor(hash: last.hash, pk: last.pk)
                }
                #expect(scanned == expected)
            }
            let all = try await store.scan(table: users, range: .full, after: nil, limit: 10_000)
            #expect(all.count == rows.count)
        }
    }

    @Test(arguments: ShardBackend.available)
    func summaryCountsAndChecksumsInTheDatabase(backend: ShardBackend) async throws {
        try await backend.withShardStore("a") { first in
            try await backend.withShardStore("b") { second in
                try await first.ensureTable(users)
                try await second.ensureTable(users)
                let rows: [StoredRow] = (0..<400).map { (n: Int) -> StoredRow in
                    let body: String? = n % 5 == 0 ? nil : "{\"n\":\(n)}"
                    return row("pk\(n)", version: UInt64(1 + n * 3), body: body)
                }
                _ = try await first.apply(rows)
                var random = SeededRandom(seed: 8)
                _ = try await second.apply(rows.shuffled(using: &random))
                for range in [HashRange.full, HashRange(start: 0, last: 1 << 62), HashRange(start: 1 << 63, last: .max)] {
                    let expected = RangeSummary(of: rows.filter { range.contains($0.hash) })
                    let found = try await first.summary(table: users, range: range)
                    #expect(found == expected)
                    #expect(try await second.summary(table: users, range: range) == expected)
                }
                _ = try await second.apply([row("pk1", version: 10_000, body: "{\"changed\":true}")])
                #expect(try await second.summary(table: users, range: .full) != (try await first.summary(table: users, range: .full)))
            }
        }
    }

    @Test(arguments: ShardBackend.available)
    func changeStreamsDeliverClientWritesInCommitOrder(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            try await store.ensureTable(orders)
            let stream = ChangeStreamID("m_conformance")!
            let start = try await store.openChangeStream(stream)
            #expect(try await store.openChangeStream(stream) >= start)
            #expect(try await store.changeStreams() == [stream])
            _ = try await store.write(write("a", proposed: 10))
            _ = try await store.write(write("b", proposed: 20))
            _ = try await store.write(
                ClientWrite(table: orders, pk: "o1", shardKey: "a", body: "{\"x\":1}", proposedVersion: 30, generation: 1))
            _ = try await store.write(write("a", body: nil, proposed: 40))
            let batch = try await store.changes(stream, after: start, through: nil, limit: 100)
            let changes = batch.changes
            #expect(changes.map(\.row.pk) == ["a", "b", "o1", "a"])
            #expect(changes.map(\.row.version) == [10, 20, 30, 40])
            #expect(changes.map(\.row.table) == [users, users, orders, users])
            #expect(changes.last?.row.isDeleted == true)
            #expect(changes.last?.row.body == nil)
            #expect(changes.first?.row.body == "{}")
            #expect(zip(changes, changes.dropFirst()).allSatisfy { $0.position < $1.position })
            #expect(batch.position >= changes[3].position)
            #expect(batch.backlog == 0)
            #expect(try await store.changePosition() >= changes[3].position)
            // `through` stops the read at a position, and the read resumes from any position.
            let cut = try await store.changes(stream, after: changes[1].position, through: changes[2].position, limit: 100)
            #expect(cut.changes.map(\.row.pk) == ["o1"])
            #expect(cut.position == changes[2].position)
            #expect(try await store.changes(stream, after: cut.position, through: nil, limit: 100).changes.map(\.row.pk) == ["a"])
            // A copy of several rows is one transaction; a small limit still returns it whole.
            let head = try await store.changes(stream, after: changes[3].position, through: nil, limit: 100).position
            _ = try await store.write(write("c", proposed: 50))
            _ = try await store.apply([row("x", version: 7), row("y", version: 8, body: nil)])
            var seen: [String] = []
            var position = head
            for _ in 0..<10 {
                let next = try await store.changes(stream, after: position, through: nil, limit: 1)
                if next.changes.isEmpty { break }
                #expect(next.position > position)
                seen += next.changes.map(\.row.pk)
                position = next.position
            }
            // The migrator's rows are not client changes and a backend may leave them out of its
            // streams (SQLite and memory do: a copy would double its target's writes); where they
            // are delivered, it is after "c" and in commit order.
            #expect(seen == ([.sqlite, .memory].contains(backend) ? ["c"] : ["c", "x", "y"]))
            try await store.closeChangeStream(stream)
            try await store.closeChangeStream(stream)
            #expect(try await store.changeStreams().isEmpty)
        }
    }

    /// A verification drains with a bound (`through`) while no unbounded tail has run: the next
    /// bounded reads must still move on. On PostgreSQL a bounded read does not move the slot, and
    /// a slot a full batch behind the reader once returned the same applied changes forever (a
    /// shard-key switch's drain stood still until its budget ran out).
    @Test(arguments: ShardBackend.available)
    func boundedReadsMoveOnWhenTheStreamIsFarBehindTheReader(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let stream = ChangeStreamID("m_bounded")!
            let start = try await store.openChangeStream(stream)
            for index in 0..<30 { _ = try await store.write(write("a\(index)", proposed: UInt64(10 + index))) }
            let first = try await store.changes(stream, after: start, through: try await store.changePosition(), limit: 1_000)
            #expect(first.changes.count == 30)
            for index in 0..<5 { _ = try await store.write(write("b\(index)", proposed: UInt64(100 + index))) }
            let target = try await store.changePosition()
            var position = first.position
            var seen: [String] = []
            for _ in 0..<20 where position < target {
                let next = try await store.changes(stream, after: position, through: target, limit: 6)
                seen += next.changes.map(\.row.pk)
                position = next.position
            }
            #expect(position >= target)
            #expect(seen == (0..<5).map { "b\($0)" })
            try await store.closeChangeStream(stream)
        }
    }

    /// Positions are handed out when a change is made but become readable when it commits, and
    /// concurrent writers commit out of order: a reader that tails while they write must never
    /// move past a change that commits later.
    @Test(arguments: ShardBackend.available)
    func tailingReadersMissNoChangeOfConcurrentWriters(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let stream = ChangeStreamID("m_tail")!
            var position = try await store.openChangeStream(stream)
            let finished = Mutex(false)
            let writers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            for i in 0..<50 { _ = try await store.write(self.write("w\(writer)-\(i)", proposed: UInt64(i + 1))) }
                        }
                    }
                    try await group.waitForAll()
                }
                finished.withLock { $0 = true }
            }
            var seen: Set<String> = []
            var reads = 0
            for _ in 0..<20_000 {
                let done = finished.withLock { $0 }
                let batch = try await store.changes(stream, after: position, through: nil, limit: 7)
                #expect(batch.position >= position)
                position = batch.position
                seen.formUnion(batch.changes.map(\.row.pk))
                reads += 1
                // Only a read that began after the last write was acknowledged may end the loop.
                if done, batch.changes.isEmpty, batch.backlog == 0 { break }
                // A store that never suspends (memory) must not spin the reads out before the
                // writers have even started.
                await Task.yield()
            }
            try await writers.value
            #expect(seen.count == 400, "\(400 - seen.count) changes were skipped over \(reads) reads")
            try await store.closeChangeStream(stream)
        }
    }

    @Test(arguments: ShardBackend.available)
    func fencesRefuseStaleClientWritesOnly(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let hash = KeyHash.of("a")
            let range = HashRange(start: hash, last: hash)
            let stream = ChangeStreamID("m_fence")!
            let start = try await store.openChangeStream(stream)
            _ = try await store.write(write("before"))
            // The position returned is the changelog's at the fence: the write above is at or before it.
            let fenced = try await store.fence([range], generation: 5)
            let before = try await store.changes(stream, after: start, through: fenced, limit: 10)
            #expect(before.changes.map(\.row.pk) == ["before"])
            #expect(before.position == fenced)
            #expect(fenced <= (try await store.changePosition()))
            try await store.fence([range], generation: 3)
            #expect(try await store.fences() == [Fence(range: range, generation: 5)])
            await #expect(throws: StoreError.fenced(at: 5)) { try await store.write(write("a", generation: 4)) }
            #expect(try await store.get(table: users, pk: "a") == nil)
            #expect(try await store.write(write("a", proposed: 7, generation: 5)) == .created(version: 7))
            // Keys outside the fenced range and migrator applies are not fenced.
            #expect(try await store.write(write("b", generation: 1)) != .notFound)
            #expect(try await store.apply([row("a", version: 100)]) == 1)
            try await store.removeFences([range])
            #expect(try await store.fences().isEmpty)
            #expect(try await store.write(write("a", proposed: 1, generation: 1)) == .written(version: 101))
        }
    }

    @Test(arguments: ShardBackend.available)
    func manyRangesAreFencedAndUnfencedTogether(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let ranges = (0..<200).map { HashRange(start: UInt64($0) << 56, last: UInt64($0) << 56 + 1_000) }
            try await store.fence(ranges, generation: 7)
            #expect(try await store.fences().count == 200)
            try await store.fence([], generation: 9)
            try await store.removeFences(Array(ranges.prefix(150)))
            #expect(try await store.fences() == ranges.suffix(50).map { Fence(range: $0, generation: 7) })
            try await store.removeFences([])
            #expect(try await store.fences().count == 50)
        }
    }

    @Test(arguments: ShardBackend.available)
    func unknownTablesAreTypedErrors(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            await #expect(throws: StoreError.unknownTable(users)) { try await store.write(write("a")) }
            await #expect(throws: StoreError.unknownTable(users)) { try await store.get(table: users, pk: "a") }
            await #expect(throws: StoreError.unknownTable(users)) { try await store.apply([row("a", version: 1)]) }
            try await store.ensureTable(users)
            try await store.ensureTable(users)
            #expect(try await store.tables() == [users])
        }
    }

    /// A backend may write concurrent applies together (SQLite commits them as a group); each
    /// caller still gets its own count, and one that fails does not fail the others.
    @Test(arguments: ShardBackend.available)
    func concurrentAppliesEachGetTheirOwnAnswer(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            _ = try await store.apply((0..<10).map { row("old\($0)", version: 100) })
            let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
                for batch in 0..<12 {
                    group.addTask {
                        let rows: [StoredRow]
                        switch batch {
                        // Half of them already there at a newer version: only the others change.
                        case 0: rows = (0..<10).map { self.row("old\($0)", version: $0 < 5 ? 50 : 200) }
                        case 1: rows = [StoredRow(table: self.orders, pk: "o", shardKey: "o", version: 1, body: "{}")]
                        default: rows = (0..<100).map { self.row("b\(batch)-\($0)", version: 1) }
                        }
                        do { return (batch, .success(try await store.apply(rows))) } catch { return (batch, .failure(error)) }
                    }
                }
                var results: [Int: Result<Int, any Error>] = [:]
                for await (batch, result) in group { results[batch] = result }
                return results
            }
            #expect(try results[0]?.get() == 5)
            #expect(throws: StoreError.unknownTable(orders)) { try results[1]?.get() }
            for batch in 2..<12 { #expect(try results[batch]?.get() == 100) }
            var stored = 0
            try await store.forEachChunk(table: users) { stored += $0.count }
            #expect(stored == 10 + 10 * 100)
        }
    }

    @Test(arguments: ShardBackend.available)
    func rowsSharingAShardKeyAreListedTogether(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            for (pk, key) in [("o1", "c1"), ("o2", "c1"), ("o3", "c2"), ("o4", "c1")] {
                _ = try await store.write(write(pk, key: key))
            }
            _ = try await store.write(write("o4", key: "c1", body: nil))
            #expect(try await store.rows(table: users, shardKey: "c1", after: nil, limit: 10).value.map(\.pk) == ["o1", "o2"])
            #expect(try await store.rows(table: users, shardKey: "c1", after: nil, limit: 1).value.map(\.pk) == ["o1"])
            #expect(try await store.rows(table: users, shardKey: "zz", after: nil, limit: 10).value.isEmpty)
        }
    }

    @Test(arguments: ShardBackend.available)
    func listingsPageOnAfterAPrimaryKeyInByteOrder(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            // Byte order, where a prefix comes first and "é" (0xC3 0xA9) sorts after "z".
            let pks = ["a", "a!", "aa", "b", "z", "é", "😀"]
            for pk in pks.shuffled() { _ = try await store.write(write(pk, key: "c1")) }
            _ = try await store.write(write("gone", key: "c1"))
            _ = try await store.write(write("gone", key: "c1", body: nil))
            var listed: [String] = []
            var after: String?
            for _ in 0..<10 {
                let page = try await store.rows(table: users, shardKey: "c1", after: after, limit: 2).value.map(\.pk)
                listed += page
                guard page.count == 2, let last = page.last else { break }
                after = last
            }
            #expect(listed == pks)
            // A key that is not a row's is a place in the order all the same.
            #expect(try await store.rows(table: users, shardKey: "c1", after: "ab", limit: 10).value.map(\.pk) == ["b", "z", "é", "😀"])
            #expect(try await store.rows(table: users, shardKey: "c1", after: "😀", limit: 10).value.isEmpty)
            await #expect(throws: StoreError.self) { try await store.rows(table: users, shardKey: "c1", after: "a\u{0}", limit: 10) }
        }
    }

    @Test(arguments: ShardBackend.available)
    func concurrentWritersToOneKeyGetDistinctGrowingVersions(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let versions = try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        var mine: [UInt64] = []
                        for i in 0..<40 {
                            let outcome = try await store.write(self.write("hot", body: "{\"w\":\(writer),\"i\":\(i)}", proposed: 1))
                            if let version = outcome.version { mine.append(version) }
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(versions.count == 320)
            #expect(Set(versions).count == 320)
            #expect(try await store.get(table: users, pk: "hot")?.version == versions.max())
        }
    }

    @Test(arguments: ShardBackend.available)
    func clientReadsReportTheFenceOverTheirKey(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            _ = try await store.write(write("a", key: "c1"))
            let unfenced = try await store.read(table: users, pk: "a", shardKey: "c1")
            #expect(unfenced.value?.pk == "a")
            #expect(unfenced.fence == nil)
            let hash = KeyHash.of("c1")
            try await store.fence([HashRange(start: hash, last: hash)], generation: 4)
            let fenced = try await store.read(table: users, pk: "a", shardKey: "c1")
            #expect(fenced.fence == 4)
            #expect(fenced.value?.pk == "a")
            #expect(try await store.rows(table: users, shardKey: "c1", after: nil, limit: 5).fence == 4)
            #expect(try await store.read(table: users, pk: "missing", shardKey: "zz").value == nil)
        }
    }

    @Test(arguments: ShardBackend.available)
    func deleteRangeRemovesRowsOfEveryTableWithoutAChange(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            try await store.ensureTable(orders)
            let rows =
                (0..<50).map { row("u\($0)", version: 1) }
                + (0..<50).map { StoredRow(table: orders, pk: "o\($0)", shardKey: "o\($0)", version: 1, body: "{}") }
            let stream = ChangeStreamID("m_cleanup")!
            let start = try await store.openChangeStream(stream)
            _ = try await store.apply(rows)
            let position = try await store.changes(stream, after: start, through: nil, limit: 1_000).position
            let range = HashRange(start: 0, last: 1 << 63)
            let inRange = rows.filter { range.contains($0.hash) }.count
            var deleted = 0
            while true {
                let chunk = try await store.deleteRange(range, limit: 7)
                deleted += chunk
                if chunk < 7 { break }
            }
            #expect(deleted == inRange)
            #expect(try await store.summary(table: users, range: range).rows == 0)
            #expect(try await store.summary(table: orders, range: range).rows == 0)
            #expect(
                try await store.summary(table: users, range: .full).rows + (try await store.summary(table: orders, range: .full).rows)
                    == 100
                    - inRange)
            // Cleanup is not a client change: nothing of it may replicate.
            #expect(try await store.changes(stream, after: position, through: nil, limit: 10).changes.isEmpty)
        }
    }

    @Test(arguments: ShardBackend.available)
    func purgeTombstonesTakesOnlyTombstonesBelowTheHorizon(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            try await store.ensureTable(orders)
            let stream = ChangeStreamID("m_purge")!
            let start = try await store.openChangeStream(stream)
            _ = try await store.apply(
                (0..<20).map { row("old\($0)", version: 10, body: nil) }  // purged
                    + (0..<5).map { row("new\($0)", version: 100, body: nil) }  // newer than the horizon
                    + (0..<5).map { row("live\($0)", version: 10) }  // live rows are never purged
                    + (0..<6).map { StoredRow(table: orders, pk: "o\($0)", shardKey: "o\($0)", version: 20, body: nil) })
            let position = try await store.changes(stream, after: start, through: nil, limit: 1_000).position
            var purged = 0
            while true {
                let chunk = try await store.purgeTombstones(before: 100, limit: 8)
                purged += chunk
                if chunk < 8 { break }
            }
            #expect(purged == 26)
            #expect(try await store.get(table: users, pk: "old3") == nil)
            #expect(try await store.get(table: users, pk: "new3")?.isDeleted == true)
            #expect(try await store.get(table: users, pk: "live3")?.version == 10)
            #expect(try await store.summary(table: users, range: .full).rows == 10)
            #expect(try await store.summary(table: orders, range: .full).rows == 0)
            #expect(try await store.changes(stream, after: position, through: nil, limit: 10).changes.isEmpty)
        }
    }

    @Test(arguments: ShardBackend.available)
    func snapshotSummariesAgreeWithTheirPosition(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let stream = ChangeStreamID("m_snapshot")!
            let start = try await store.openChangeStream(stream)
            for i in 0..<30 { _ = try await store.write(write("k\(i)", proposed: UInt64(i + 1))) }
            let ranges = [HashRange(start: 0, last: 1 << 63), HashRange(start: (1 << 63) + 1, last: .max)]
            let snapshot = try await store.summarize(SummaryRequest(tables: [users], ranges: ranges))
            // The position is exactly the summed state's: the stream through it holds the 30 writes.
            let through = try await store.changes(stream, after: start, through: snapshot.position, limit: 100)
            #expect(through.changes.count == 30)
            #expect(through.position == snapshot.position)
            let expected = try await ranges.asyncMap { [try await store.summary(table: users, range: $0)] }
            #expect(snapshot.summaries[users] == expected)
            #expect(snapshot.summaries[users]?.reduce(0) { $0 + $1[0].rows } == 30)
            let scanned = try await store.snapshotScan(table: users, range: .full, after: nil, limit: 100)
            #expect(scanned.position >= snapshot.position)
            #expect(try await store.changes(stream, after: snapshot.position, through: scanned.position, limit: 10).changes.isEmpty)
            #expect(scanned.rows == (try await store.scan(table: users, range: .full, after: nil, limit: 100)))
        }
    }

    /// Sub-range sums must bucket exactly as `HashRange.subrangeIndex`, for narrow ranges (summed
    /// in the database) and ranges over half the space (bucketed by the store in code).
    @Test(arguments: ShardBackend.available)
    func subrangeSummariesBucketLikeTheCore(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let rows: [StoredRow] = (0..<600).map { n in row("pk\(n)", version: UInt64(10 + n), body: n % 7 == 0 ? nil : "{\"n\":\(n)}") }
            _ = try await store.apply(rows)
            let ranges = [HashRange.full, HashRange(start: 1 << 60, last: (1 << 63) + 5), HashRange(start: 12_345, last: 12_399)]
            for parts in [1, 16, 256] {
                let snapshot = try await store.summarize(SummaryRequest(tables: [users], ranges: ranges, parts: parts))
                for (index, range) in ranges.enumerated() {
                    let pieces = range.split(into: parts)
                    var expected = Array(repeating: RangeSummary.empty, count: pieces.count)
                    for row in rows where range.contains(row.hash) { expected[range.subrangeIndex(of: row.hash, parts: parts)].add(row) }
                    #expect(snapshot.summaries[users]?[index] == expected, "\(range) in \(parts)")
                }
            }
        }
    }

    @Test(arguments: ShardBackend.available)
    func aggregateChecksSumNumbersExactly(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            // 0.1 ten times is 1 exactly in decimal, never 0.9999999999999999.
            var rows = (0..<10).map { row("d\($0)", version: 5, body: "{\"amount\":0.1}") }
            rows += [
                row("i1", version: 5, body: "{\"amount\":-42}"), row("i2", version: 5, body: "{\"amount\":9007199254740993}"),
                row("s1", version: 5, body: "{\"amount\":\"7\"}"), row("n1", version: 5, body: "{\"other\":1}"),
                row("t1", version: 5, body: nil),
            ]
            _ = try await store.apply(rows)
            let check = try #require(AggregateCheck("users.amount"))
            let snapshot = try await store.summarize(SummaryRequest(tables: [], ranges: [.full], checks: [check]))
            #expect(snapshot.aggregates[check] == [AggregateSummary(rows: 14, numeric: 12, sum: "9007199254740952")])
        }
    }

    @Test(arguments: ShardBackend.available)
    func repairOverwritesWhateverTheVersionAndRemovesWithoutAChange(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let stream = ChangeStreamID("m_repair")!
            let start = try await store.openChangeStream(stream)
            _ = try await store.apply([row("a", version: 9, body: "{\"x\":\"corrupt\"}"), row("b", version: 3), row("c", version: 4)])
            let position = try await store.changes(stream, after: start, through: nil, limit: 100).position
            let changed = try await store.repair(
                table: users, overwrite: [row("a", version: 9, body: "{\"x\":1}"), row("b", version: 2)], remove: ["c", "nope"])
            #expect(changed == 3)
            #expect(try await store.get(table: users, pk: "a") == row("a", version: 9, body: "{\"x\":1}"))
            #expect(try await store.get(table: users, pk: "b") == row("b", version: 2))
            #expect(try await store.get(table: users, pk: "c") == nil)
            // The removal leaves no changelog entry: nothing of it may replicate anywhere.
            #expect(try await store.changes(stream, after: position, through: nil, limit: 10).changes.map(\.row.pk).sorted() == ["a", "b"])
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
