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
                            _ = try await store.rows(table: self.users, shardKey: pk, after: nil, limit: 5)
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
            #expect(try await store.write(write("b", body: "{}", proposed: 7)) == .created(version: 7))
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
            #expect(try await store.write(write("a", body: "{\"v\":2}", proposed: 3)) == .created(version: 3))
            #expect(try await store.read(table: users, pk: "a", shardKey: "a").value?.body == "{\"v\":2}")
        }
    }
}

/// `PostgresPool.withConnection`'s bounds, kept by `PostgresCallWatch`. The checks are of
/// order, not time (a loaded machine can stretch any time): each answer must come while the
/// call it waits behind is still running.
@Suite struct PostgresPoolWaitTests {
    func pool(size: Int, leaseTimeout: Duration) throws -> PostgresPool? {
        guard let base = PostgresScratch.servers().first else { return nil }
        let endpoint = try PostgresEndpoint(url: "postgres://\(base.user)@\(base.host):\(base.port)/postgres?pool=\(size)")
        return PostgresPool(endpoint: endpoint, logger: .init(label: "test"), leaseTimeout: leaseTimeout)
    }

    /// A call that finds every connection busy gives up after the lease timeout, with an error
    /// that says so, and the pool serves again once the connection is free.
    @Test func aCallWaitingForABusyPoolGivesUpAfterTheLeaseTimeout() async throws {
        guard let pool = try pool(size: 1, leaseTimeout: .milliseconds(300)) else { return }
        let holder = try #require(try self.pool(size: 1, leaseTimeout: .seconds(30)))
        // The connection is opened first: on a loaded machine opening it can take longer than
        // the lease timeout under test.
        _ = try await selectOne(pool)
        let holding = try await holdTheOnlyConnection(of: pool, tag: "reshard-lease-test")
        await #expect {
            try await pool.withConnection { try await $0.query("SELECT 1", logger: pool.logger) }
        } throws: { error in
            "\(error)".contains("no connection to") && "\(error)".contains("within")
        }
        try await cancelSleepers("reshard-lease-test", with: holder)
        _ = await holding.result
        #expect(try await selectOne(pool) == 1)
        await pool.close()
        await holder.close()
    }

    /// A caller cancelled while it waits for a lease is answered at once (while the call ahead
    /// of it still runs), and its body never runs on the connection it would have got.
    @Test func aCallerCancelledWhileWaitingIsAnsweredAndItsBodyNeverRuns() async throws {
        guard let pool = try pool(size: 1, leaseTimeout: .seconds(60)) else { return }
        let holder = try #require(try self.pool(size: 1, leaseTimeout: .seconds(30)))
        let ran = Mutex(false)
        let holding = try await holdTheOnlyConnection(of: pool, tag: "reshard-cancel-test")
        let waiting = Task {
            try await pool.withConnection { _ in ran.withLock { $0 = true } }
        }
        try await Task.sleep(for: .milliseconds(100))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        try await cancelSleepers("reshard-cancel-test", with: holder)
        _ = await holding.result
        try await pool.withConnection { try await $0.query("SELECT 1", logger: pool.logger) }
        #expect(!ran.withLock { $0 })
        await pool.close()
        await holder.close()
    }

    /// A connection the server ends under a running query answers its caller with an error,
    /// not a wait for ever, and hands its lease back: a pool of one serves the next call.
    @Test func aConnectionEndedUnderAQueryAnswersWithAnErrorAndFreesItsLease() async throws {
        guard let pool = try pool(size: 1, leaseTimeout: .seconds(30)) else { return }
        let admin = try #require(try self.pool(size: 1, leaseTimeout: .seconds(30)))
        let sleeping = try await holdTheOnlyConnection(of: pool, tag: "reshard-ended-test")
        try await Task.sleep(for: .milliseconds(100))
        try await admin.withConnection { connection in
            try await connection.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%reshard-ended-test%' AND pid <> pg_backend_pid()",
                logger: admin.logger)
        }
        await #expect(throws: (any Error).self) { try await sleeping.value }
        // The pool may hand out the ended connection again before it sees it closed (the call
        // then fails at once, from PostgresNIO or from the pool's own watch of the connection;
        // a full run saw three such calls in a row); it must not stay leased, or the next call
        // would time out: a bounded number of quick failures, then an answer.
        for attempt in 1...50 {
            do {
                try await pool.withConnection { try await $0.query("SELECT 1", logger: pool.logger) }
                break
            } catch
                where attempt < 50 && (error is PostgresSession.SessionLost || "\(String(reflecting: error))".contains("ClosedConnection"))
            {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        await pool.close()
        await admin.close()
    }

    /// `SELECT 1` through a pool with a short lease timeout, tried again while the pool answers
    /// "no connection within": on a loaded machine the lease the call before handed back can
    /// reach the next caller later than the timeout under test. What is checked is that the
    /// pool serves again, not how soon.
    private func selectOne(_ pool: PostgresPool) async throws -> Int32 {
        let once = {
            try await pool.withConnection { connection in
                var found: Int32 = 0
                for try await value in try await connection.query("SELECT 1", logger: pool.logger).decode(Int32.self) { found = value }
                return found
            }
        }
        for _ in 1..<50 {
            do { return try await once() } catch  where "\(error)".contains("within") {}
        }
        return try await once()
    }

    /// Starts a `pg_sleep` tagged `tag` on the pool's only connection and returns once it runs.
    private func holdTheOnlyConnection(of pool: PostgresPool, tag: String) async throws -> Task<Int, any Error> {
        // On a loaded machine the lease itself can time out (one pool under test waits 0.3 s)
        // before the connection a previous call released is handed out: a failed hold is tried
        // again, a bounded number of times, rather than waited for forever (a full run once
        // hung here, the hold having failed and nothing left to set `busy`).
        for _ in 0..<20 {
            let state = Mutex(HoldState.waiting)
            let holding = Task {
                do {
                    return try await pool.withConnection { connection in
                        state.withLock { $0 = .busy }
                        // The tag is in the statement's text, where pg_stat_activity shows it (a
                        // bound parameter would not be); it is a constant of these tests.
                        return try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_sleep(20), '\(tag)'"), logger: pool.logger)
                            .collect().count
                    }
                } catch {
                    state.withLock { if $0 == .waiting { $0 = .failed } }
                    throw error
                }
            }
            // Bounded by the pool's lease timeout (at most 60 s here): the hold gets the
            // connection or fails by then.
            for _ in 0..<4_000 {
                let now = state.withLock { $0 }
                if now == .busy { return holding }
                if now == .failed { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            holding.cancel()
            _ = await holding.result
        }
        throw PoolTestError("could not hold the pool's only connection in 20 tries")
    }

    private enum HoldState { case waiting, busy, failed }

    private struct PoolTestError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Ends the `pg_sleep` call tagged `tag` early, so it does not outlive its test's checks.
    private func cancelSleepers(_ tag: String, with admin: PostgresPool) async throws {
        let pattern = "%\(tag)%"
        try await admin.withConnection { connection in
            try await connection.query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE \(pattern) AND pid <> pg_backend_pid()",
                logger: admin.logger)
        }
    }
}
