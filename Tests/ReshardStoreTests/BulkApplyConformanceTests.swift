import ReshardCore
import ReshardTestKit
import Testing

// For the PostgreSQL store's staging threshold: the batches here must be over it.
@testable import ReshardStore

/// `apply` of batches as large as a copy chunk, which PostgreSQL stages through `COPY` text:
/// every value arrives byte for byte, a tombstone stays apart from an empty body, and the
/// version rule holds row by row, on every backend alike.
@Suite struct BulkApplyConformanceTests {
    let users = TableName("users")!
    let orders = TableName("orders")!

    /// Enough rows that the PostgreSQL store takes its `COPY` path, whatever else a test adds.
    static let bulk = PostgresShardStore.copyThreshold + 50

    /// Bodies that `COPY`'s text format would change if a byte were left unescaped, and a few
    /// it must leave alone.
    static let awkwardBodies: [String?] = [
        "tab\there", "new\nline", "carriage\rreturn", "crlf\r\n", "back\\slash", "\\N", "\\\\N", "N", "\\.", "\\.\n",
        "ends with a backslash\\", "\\t is not a tab", "quotes \" ' ` and $$ and ;", "é 日本語 Ελληνικά", "😀🇫🇷👩‍👩‍👧",
        "", nil, "\t", "\n", " ", "{\"json\":\"a\\tb\\nc \\\\ \\u00e9\"}", "\u{7F}\u{1}\u{1B}[0m controls", "\u{FEFF}bom",
        String(repeating: "x", count: 4_000), String(repeating: "\\\t\n\r😀", count: 800), String(repeating: "é", count: 4_000),
    ]

    func row(_ pk: String, version: UInt64, body: String?, key: String? = nil, table: TableName? = nil) -> StoredRow {
        StoredRow(table: table ?? users, pk: pk, shardKey: key ?? pk, version: version, body: body)
    }

    /// A batch over the threshold of rows with awkward bodies and keys, read back exactly.
    @Test(arguments: ShardBackend.available)
    func bulkBatchesRoundTripByteForByte(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let keys = ["é", "日本語", "😀🇫🇷", "a b+c%20/d?e#f", "back\\slash key", "\\N", "quote\"'key", String(repeating: "k", count: 512)]
            var rows: [StoredRow] = []
            for (index, body) in Self.awkwardBodies.enumerated() {
                rows.append(row("body-\(index)", version: 100 + UInt64(index), body: body, key: keys[index % keys.count]))
            }
            for (index, key) in keys.enumerated() {
                rows.append(row(key, version: UInt64(index) + 1, body: "key \(index)", key: "skey " + key))
            }
            // A version with the top bit set is stored negative; it must come back as it went in.
            rows.append(row("top-bit", version: UInt64.max - 1, body: "top"))
            while rows.count < Self.bulk { rows.append(row("filler-\(rows.count)", version: 7, body: "{\"n\":\(rows.count)}")) }
            #expect(try await store.apply(rows) == rows.count)
            for expected in rows {
                let stored = try await store.get(table: users, pk: expected.pk)
                #expect(stored == expected, "\(expected.pk)")
                #expect(stored?.body?.utf8.elementsEqual(expected.body?.utf8 ?? "".utf8) ?? (expected.body == nil))
            }
            #expect(try await store.get(table: users, pk: "body-16")?.isDeleted == true, "nil is a tombstone")
            #expect(try await store.get(table: users, pk: "body-15")?.body == "", "an empty body is not a tombstone")
            // The hash was stored too: a shard key's rows are found by it, and a scan sees them all.
            let found = try await store.rows(table: users, shardKey: "skey é", after: nil, limit: 10).value
            #expect(found.map(\.pk) == ["é"])
            let scanned = try await store.scan(table: users, range: .full, after: nil, limit: rows.count + 1)
            #expect(scanned.count == rows.count)
            #expect(scanned.map { KeyHash.ordered($0.hash) } == scanned.map { KeyHash.ordered($0.hash) }.sorted())
            // Applied again, nothing is newer: nothing changes.
            #expect(try await store.apply(rows) == 0)
        }
    }

    /// The version race of a copy, in bulk: what the target holds newer or as new stays (a live
    /// row or a tombstone), what it holds older is replaced (by a row or a tombstone), and the
    /// count is of rows changed, not rows sent.
    @Test(arguments: ShardBackend.available)
    func bulkBatchesKeepNewerRowsAndReplaceOlderOnes(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            let held = Self.bulk / 4
            var before: [StoredRow] = []
            for index in 0..<held {
                before.append(row("newer-\(index)", version: 1_000, body: "kept \(index)"))
                before.append(row("equal-\(index)", version: 500, body: "kept \(index)"))
                before.append(row("older-\(index)", version: 10, body: "old \(index)"))
                before.append(row("gone-\(index)", version: 1_000, body: nil))
            }
            before.append(row("dies", version: 10, body: "alive"))
            before.append(row("revives", version: 10, body: nil))
            #expect(try await store.apply(before) == before.count)

            var batch: [StoredRow] = []
            for index in 0..<held {
                batch.append(row("newer-\(index)", version: 500, body: "copy \(index)"))
                batch.append(row("equal-\(index)", version: 500, body: "copy \(index)"))
                batch.append(row("older-\(index)", version: 500, body: "copy\t\(index)\n"))
                batch.append(row("gone-\(index)", version: 500, body: "copy \(index)"))
                batch.append(row("fresh-\(index)", version: 500, body: "fresh \(index)"))
            }
            batch.append(row("dies", version: 500, body: nil))
            batch.append(row("revives", version: 500, body: ""))
            #expect(batch.count >= PostgresShardStore.copyThreshold)
            #expect(try await store.apply(batch) == 2 * held + 2, "older and fresh rows, dies, revives")

            for index in 0..<held {
                #expect(
                    try await store.get(table: users, pk: "newer-\(index)") == row("newer-\(index)", version: 1_000, body: "kept \(index)"))
                #expect(
                    try await store.get(table: users, pk: "equal-\(index)") == row("equal-\(index)", version: 500, body: "kept \(index)"))
                #expect(
                    try await store.get(table: users, pk: "older-\(index)") == row("older-\(index)", version: 500, body: "copy\t\(index)\n")
                )
                #expect(try await store.get(table: users, pk: "gone-\(index)") == row("gone-\(index)", version: 1_000, body: nil))
                #expect(
                    try await store.get(table: users, pk: "fresh-\(index)") == row("fresh-\(index)", version: 500, body: "fresh \(index)"))
            }
            #expect(try await store.get(table: users, pk: "dies") == row("dies", version: 500, body: nil))
            #expect(try await store.get(table: users, pk: "revives") == row("revives", version: 500, body: ""))

            // A key three times in one batch: the newest wins, as if applied one by one (what
            // such a batch counts differs between backends, so only the outcome is checked).
            var repeated = (0..<Self.bulk).map { row("again-\($0)", version: 1, body: "x") }
            repeated += [row("twice", version: 7, body: "first"), row("twice", version: 9, body: "second")]
            repeated.append(row("twice", version: 8, body: "third"))
            _ = try await store.apply(repeated)
            #expect(try await store.get(table: users, pk: "twice") == row("twice", version: 9, body: "second"))
        }
    }

    /// Two tables in one batch, each over the threshold: each gets its own rows only.
    @Test(arguments: ShardBackend.available)
    func bulkBatchesOfTwoTablesKeepTheirRowsApart(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            try await store.ensureTable(orders)
            var batch: [StoredRow] = []
            for index in 0..<Self.bulk {
                batch.append(row("u\(index)", version: 3, body: "user\t\(index)", table: users))
                batch.append(row("o\(index)", version: 4, body: index.isMultiple(of: 2) ? nil : "order\\\(index)", table: orders))
            }
            batch.append(row("small", version: 1, body: "one", table: orders))
            #expect(try await store.apply(batch) == batch.count)
            let storedUsers = try await store.scan(table: users, range: .full, after: nil, limit: 2 * Self.bulk)
            let storedOrders = try await store.scan(table: orders, range: .full, after: nil, limit: 2 * Self.bulk)
            #expect(Set(storedUsers) == Set(batch.filter { $0.table == users }))
            #expect(Set(storedOrders) == Set(batch.filter { $0.table == orders }))
        }
    }

    /// A batch for a table that was never created fails like a small one: unknown table.
    @Test(arguments: ShardBackend.available)
    func bulkBatchOfAnUnknownTableIsRefused(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            let rows = (0..<Self.bulk).map { row("r\($0)", version: 1, body: "x") }
            await #expect(throws: StoreError.unknownTable(users)) { try await store.apply(rows) }
        }
    }
}

/// The PostgreSQL store's `COPY` straight into a row table, refused by a stored key.
@Suite struct PostgresCopyInsertTests {
    let users = TableName("users")!

    /// A key stored between the store's look and its `COPY` (a concurrent write) makes the
    /// primary key refuse the whole `COPY`: nothing is written, the connection serves on, and
    /// the batch then merges by version.
    @Test func aCopyOverAStoredKeyWritesNothingAndTheBatchMergesByVersion() async throws {
        guard ShardBackend.available.contains(.postgres) else { return }
        try await ShardBackend.postgres.withShardStore { store in
            let postgres = try #require(store as? PostgresShardStore)
            try await store.ensureTable(users)
            let kept = StoredRow(table: users, pk: "k5", shardKey: "k5", version: 100, body: "kept")
            #expect(try await store.apply([kept]) == 1)
            let rows = (0..<BulkApplyConformanceTests.bulk).map {
                StoredRow(table: users, pk: "k\($0)", shardKey: "k\($0)", version: 50, body: "copy\t\($0)")
            }
            let table = users
            let inserted = try await postgres.pool.withConnection { try await postgres.insertByCopy($0, rows, table: table) }
            #expect(!inserted)
            #expect(try await store.get(table: users, pk: "k0") == nil, "the refused COPY left nothing")
            #expect(try await store.apply(rows) == rows.count - 1)
            #expect(try await store.get(table: users, pk: "k5") == kept)
            #expect(try await store.get(table: users, pk: "k0") == rows[0])
        }
    }
}
