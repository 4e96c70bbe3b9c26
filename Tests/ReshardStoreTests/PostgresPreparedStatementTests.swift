import PostgresNIO
import ReshardCore
import Synchronization
import Testing

@testable import ReshardStore
@testable import ReshardTestKit

/// The PostgreSQL store's client reads and writes run as statements prepared once per pooled
/// connection (`PostgresPreparedStatements`).
@Suite struct PostgresPreparedStatementTests {
    let users = TableName("users")!

    func write(_ pk: String, body: String?, proposed: UInt64 = 1) -> ClientWrite {
        ClientWrite(table: users, pk: pk, shardKey: pk, body: body, proposedVersion: proposed, generation: 1)
    }

    /// Many calls prepare each statement once per connection: the cache holds at most the
    /// statement kinds times the pool's connections, however many calls ran.
    @Test func eachStatementIsPreparedOncePerConnection() async throws {
        guard ShardBackend.available.contains(.postgres) else { return }
        try await ShardBackend.postgres.withShardStore { store in
            let postgres = try #require(store as? PostgresShardStore)
            try await store.ensureTable(users)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        for step in 0..<40 {
                            let pk = "k\((worker * 40 + step) % 50)"
                            _ = try await store.write(self.write(pk, body: "{\"w\":\(worker)}"))
                            _ = try await store.read(table: self.users, pk: pk, shardKey: pk)
                            _ = try await store.rows(table: self.users, shardKey: pk, limit: 5)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let prepared = postgres.pool.statements.count
            // Three statements ran here: the put, the read and the listing.
            #expect(prepared >= 3)
            #expect(prepared <= 3 * postgres.pool.endpoint.poolSize)
        }
    }

    /// A pooled connection the server ends (a restart, an operator's `pg_terminate_backend`)
    /// takes its statements with it: the next connection prepares them again, and reads and
    /// writes go on answering the stored bytes.
    @Test func statementsArePreparedAgainOnTheConnectionsThatReplaceEndedOnes() async throws {
        guard ShardBackend.available.contains(.postgres) else { return }
        try await ShardBackend.postgres.withShardStore { store in
            let postgres = try #require(store as? PostgresShardStore)
            try await store.ensureTable(users)
            let body = "{\"quote\":\"it's\",\"nul\":\"\\u0000\",\"emoji\":\"🦊\"}"
            _ = try await store.write(write("a'; DROP TABLE r_users; --", body: body))
            #expect(
                try await store.read(table: users, pk: "a'; DROP TABLE r_users; --", shardKey: "a'; DROP TABLE r_users; --").value?.body
                    == body)
            // Ends every other session of this database, the pool's idle connections included.
            try await postgres.pool.withConnection { connection in
                try await connection.query(
                    """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                    """, logger: postgres.logger)
            }
            var answered = 0
            for _ in 0..<40 {
                // A call that met a connection as it closed may fail; the pool then replaces it.
                if let row = try? await store.read(table: users, pk: "a'; DROP TABLE r_users; --", shardKey: "a'; DROP TABLE r_users; --") {
                    #expect(row.value?.body == body)
                    answered += 1
                }
            }
            #expect(answered >= 30)
            #expect(try await store.write(write("b", body: "{}", proposed: 7)) == .written(version: 7))
        }
    }

    /// A row table dropped and created again under a prepared statement (a cleanup, then a new
    /// migration) is read through it: the server plans the statement again, and an unknown table
    /// is still reported as one.
    @Test func aTableDroppedUnderAPreparedStatementIsReportedThenReadAgain() async throws {
        guard ShardBackend.available.contains(.postgres) else { return }
        try await ShardBackend.postgres.withShardStore { store in
            let postgres = try #require(store as? PostgresShardStore)
            try await store.ensureTable(users)
            _ = try await store.write(write("a", body: "{\"v\":1}"))
            #expect(try await store.read(table: users, pk: "a", shardKey: "a").value?.body == "{\"v\":1}")
            try await postgres.pool.withConnection { try await $0.query("DROP TABLE r_users", logger: postgres.logger) }
            await #expect {
                _ = try await store.read(table: users, pk: "a", shardKey: "a")
            } throws: { error in
                (error as? StoreError)?.isUnknownTable == true
            }
            await #expect {
                _ = try await store.write(write("a", body: "{}"))
            } throws: { error in
                (error as? StoreError)?.isUnknownTable == true
            }
            try await postgres.pool.withConnection { try await $0.query("DELETE FROM _reshard_tables", logger: postgres.logger) }
            try await store.ensureTable(users)
            #expect(try await store.read(table: users, pk: "a", shardKey: "a").value == nil)
            #expect(try await store.write(write("a", body: "{\"v\":2}", proposed: 3)) == .written(version: 3))
            #expect(try await store.read(table: users, pk: "a", shardKey: "a").value?.body == "{\"v\":2}")
        }
    }
}
