import GRDB
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// What only the SQLite backend promises: shard files written by an older Reshard open and
/// behave like new ones.
@Suite struct SQLiteShardFileTests {
    let users = TableName("users")!

    func row(_ pk: String, version: UInt64) -> StoredRow {
        StoredRow(table: users, pk: pk, shardKey: pk, version: version, body: "{}")
    }

    /// Before v3 the changelog triggers caught the migrator's `apply` as well; reopening such a
    /// file replaces them, so a copy into it no longer doubles its writes.
    @Test func aFileWithCaptureAllTriggersStopsCapturingAppliesWhenReopened() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/s1.sqlite"
        let stream = ChangeStreamID("m_old")!
        let old = try SQLiteShardStore(shardID: ShardID("s1")!, path: path)
        try await old.ensureTable(users)
        let start = try await old.openChangeStream(stream)
        // The file as the previous release left it: triggers without the condition, no v3.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "DROP TABLE _reshard_uncaptured")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v3-uncaptured-apply'")
            for event in ["INSERT", "UPDATE"] {
                try db.execute(
                    sql: """
                        DROP TRIGGER "r_users_cdc_\(event.lowercased())";
                        CREATE TRIGGER "r_users_cdc_\(event.lowercased())" AFTER \(event) ON "r_users" BEGIN
                            INSERT INTO _reshard_changelog(tbl, pk, skey, version, body, at_ms)
                            VALUES('users', NEW.pk, NEW.skey, NEW.version, NEW.body, 0);
                        END;
                        """)
            }
        }
        // What the old `apply` did: a plain upsert, which those triggers capture.
        try await queue.write { db in
            try db.execute(
                sql: "INSERT INTO r_users(pk, skey, h, version, body, digest) VALUES('copied-before', 'copied-before', 0, 1, '{}', 0)")
        }
        try await queue.close()
        let before = try await old.changes(stream, after: start, through: nil, limit: 10)
        #expect(before.changes.map(\.row.pk) == ["copied-before"])

        let reopened = try SQLiteShardStore(shardID: ShardID("s1")!, path: path)
        #expect(try await reopened.apply([row("copied-after", version: 1)]) == 1)
        _ = try await reopened.write(
            ClientWrite(table: users, pk: "written", shardKey: "written", body: "{}", proposedVersion: 1, generation: 1))
        let after = try await reopened.changes(stream, after: before.position, through: nil, limit: 10)
        #expect(after.changes.map(\.row.pk) == ["written"])
        #expect(try await reopened.get(table: users, pk: "copied-after")?.version == 1)
    }

    /// A shard file damaged behind Reshard's back (a value of the wrong type where a row, a
    /// version or a fence is kept) is answered with an error on each read, never a trap that a
    /// restart would repeat.
    @Test(arguments: [
        ("UPDATE r_users SET pk = x'ff00' WHERE pk = 'a'", "scan"),
        ("UPDATE r_users SET version = 'seven' WHERE pk = 'a'", "read"),
        ("UPDATE r_users SET version = 'seven' WHERE pk = 'a'", "write"),
        ("UPDATE r_users SET version = 'seven' WHERE pk = 'a'", "scan"),
        ("INSERT INTO _reshard_fences(range_start, range_last, generation) VALUES(5, -5, 1)", "fences"),
        ("INSERT INTO _reshard_fences(range_start, range_last, generation) VALUES('x', 'y', 'z')", "fences"),
    ])
    func aDamagedFileIsAnErrorNotATrap(damage: String, call: String) async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/s1.sqlite"
        let store = try SQLiteShardStore(shardID: ShardID("s1")!, path: path)
        try await store.ensureTable(users)
        #expect(try await store.apply([row("a", version: 3)]) == 1)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { try $0.execute(sql: damage) }
        try await queue.close()
        await #expect(throws: (any Error).self) {
            switch call {
            case "scan": _ = try await store.scan(table: users, range: .full, after: nil, limit: 10)
            case "read": _ = try await store.read(table: users, pk: "a", shardKey: "a")
            case "write":
                _ = try await store.write(ClientWrite(table: users, pk: "a", shardKey: "a", body: "{}", proposedVersion: 9, generation: 1))
            default: _ = try await store.fences()
            }
        }
        await store.close()
    }
}
