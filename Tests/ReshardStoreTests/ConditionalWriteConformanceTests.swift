import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// Conditional client writes (`WriteCondition`), checked by every backend inside the write's
/// transaction: the outcome says what happened, and a refused write changes nothing, not even
/// the changelog.
@Suite struct ConditionalWriteConformanceTests {
    let users = TableName("users")!

    func write(_ pk: String, body: String? = "{}", proposed: UInt64 = 1, _ condition: WriteCondition? = nil) -> ClientWrite {
        ClientWrite(table: users, pk: pk, shardKey: pk, body: body, proposedVersion: proposed, generation: 1, condition: condition)
    }

    @Test(arguments: ShardBackend.available)
    func upsertsSayWhetherTheyCreatedTheRow(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            #expect(try await store.write(write("a", proposed: 10)) == .created(version: 10))
            #expect(try await store.write(write("a", proposed: 10)) == .written(version: 11))
            #expect(try await store.write(write("a", body: nil, proposed: 10)) == .written(version: 12))
            // Over a tombstone, an upsert creates the row again.
            #expect(try await store.write(write("a", proposed: 10)) == .created(version: 13))
            #expect(try await store.write(write("missing", body: nil)) == .notFound)
        }
    }

    @Test(arguments: ShardBackend.available)
    func ifMatchWritesOnlyOverTheNamedLiveVersion(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            // Absent: no version matches, `*` neither; nothing is created.
            #expect(try await store.write(write("a", proposed: 5, .version(5))) == .preconditionFailed)
            #expect(try await store.write(write("a", proposed: 5, WriteCondition(ifMatch: .any))) == .preconditionFailed)
            #expect(try await store.get(table: users, pk: "a") == nil)

            #expect(try await store.write(write("a", body: #"{"n":1}"#, proposed: 5)) == .created(version: 5))
            #expect(try await store.write(write("a", body: #"{"n":2}"#, proposed: 1, .version(4))) == .preconditionFailed)
            #expect(try await store.get(table: users, pk: "a")?.body == #"{"n":1}"#)
            #expect(try await store.write(write("a", body: #"{"n":2}"#, proposed: 1, .version(5))) == .written(version: 6))
            // A stale tag among others, and `*`.
            let either = WriteCondition(ifMatch: .versions([1, 6, 99]))
            #expect(try await store.write(write("a", body: #"{"n":3}"#, proposed: 1, either)) == .written(version: 7))
            #expect(
                try await store.write(write("a", body: #"{"n":4}"#, proposed: 1, WriteCondition(ifMatch: .any))) == .written(version: 8))
            // Tags that name no version of ours match nothing.
            #expect(
                try await store.write(write("a", body: "{}", proposed: 1, WriteCondition(ifMatch: .versions([])))) == .preconditionFailed)
            #expect(try await store.get(table: users, pk: "a")?.body == #"{"n":4}"#)

            // A tombstone is not live: If-Match fails, and a conditional delete of it is refused
            // before it would be "not found".
            #expect(try await store.write(write("a", body: nil, proposed: 1, .version(8))) == .written(version: 9))
            #expect(try await store.write(write("a", proposed: 1, .version(9))) == .preconditionFailed)
            #expect(try await store.write(write("a", body: nil, proposed: 1, .version(9))) == .preconditionFailed)
            #expect(try await store.get(table: users, pk: "a")?.isDeleted == true)
        }
    }

    @Test(arguments: ShardBackend.available)
    func ifNoneMatchStarCreatesOnlyWhenNoLiveRowExists(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            #expect(try await store.write(write("a", body: #"{"first":true}"#, proposed: 3, .absent)) == .created(version: 3))
            #expect(try await store.write(write("a", body: #"{"first":false}"#, proposed: 3, .absent)) == .preconditionFailed)
            #expect(try await store.get(table: users, pk: "a")?.body == #"{"first":true}"#)
            // If-None-Match with a tag: refused only over that version.
            #expect(
                try await store.write(write("a", body: "{}", proposed: 1, WriteCondition(ifNoneMatch: .versions([3]))))
                    == .preconditionFailed)
            #expect(
                try await store.write(write("a", body: "{}", proposed: 1, WriteCondition(ifNoneMatch: .versions([2]))))
                    == .written(version: 4))
            _ = try await store.write(write("a", body: nil))
            // Over a tombstone the row may be created again.
            #expect(try await store.write(write("a", body: "{}", proposed: 1, .absent)) == .created(version: 6))
            // A delete with If-None-Match: * of a live row is refused; of an absent one, not found.
            #expect(try await store.write(write("a", body: nil, proposed: 1, .absent)) == .preconditionFailed)
            #expect(try await store.write(write("b", body: nil, proposed: 1, .absent)) == .notFound)
        }
    }

    @Test(arguments: ShardBackend.available)
    func refusedWritesLeaveNoChange(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            _ = try await store.write(write("a", proposed: 5))
            let stream = ChangeStreamID("m_conditional")!
            let start = try await store.openChangeStream(stream)
            #expect(try await store.write(write("a", body: #"{"x":1}"#, proposed: 1, .version(4))) == .preconditionFailed)
            #expect(try await store.write(write("a", body: nil, proposed: 1, .version(4))) == .preconditionFailed)
            #expect(try await store.write(write("a", body: #"{"x":1}"#, proposed: 1, .absent)) == .preconditionFailed)
            #expect(try await store.write(write("a", body: #"{"x":2}"#, proposed: 1, .version(5))) == .written(version: 6))
            let changes = try await store.changes(stream, after: start, through: nil, limit: 100).changes
            #expect(changes.map(\.row.version) == [6])
            try await store.closeChangeStream(stream)
        }
    }

    /// Eight writers increment one counter by read, then write with If-Match: every write that
    /// was acknowledged counts, exactly once, whatever the interleaving.
    @Test(arguments: ShardBackend.available)
    func compareAndSetIncrementsLoseNoUpdate(backend: ShardBackend) async throws {
        try await backend.withShardStore { store in
            try await store.ensureTable(users)
            _ = try await store.write(write("counter", body: #"{"n":0}"#))
            let table = users
            let successes = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var done = 0
                        var attempts = 0
                        while done < 10 && attempts < 2_000 {
                            attempts += 1
                            guard let row = try await store.get(table: table, pk: "counter"), let body = row.body else { continue }
                            let n = Int(body.dropFirst(5).dropLast()) ?? -1
                            let next = ClientWrite(
                                table: table, pk: "counter", shardKey: "counter", body: #"{"n":\#(n + 1)}"#, proposedVersion: 1,
                                generation: 1, condition: .version(row.version))
                            if case .written = try await store.write(next) { done += 1 }
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(successes == 80)
            #expect(try await store.get(table: users, pk: "counter")?.body == #"{"n":80}"#)
        }
    }
}
