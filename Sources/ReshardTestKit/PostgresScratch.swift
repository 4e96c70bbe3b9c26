import Foundation
import Logging
import PostgresNIO
import ReshardStore

/// Throw-away databases on PostgreSQL servers, for the tests and benchmarks: `scripts/postgres`
/// starts the servers and names them in `RESHARD_PG_1`, `RESHARD_PG_2`, … .
public enum PostgresScratch {
    /// The environment's name for the servers with `wal_level = replica` (`RESHARD_PG_REPLICA_1`, …).
    public static let replicaServers = "RESHARD_PG_REPLICA"

    /// The servers the environment names, in order (none when PostgreSQL tests are not set up):
    /// `RESHARD_PG_1`, … decode logically; `RESHARD_PG_REPLICA_1`, … (`name: replicaServers`)
    /// run with `wal_level = replica`, where shards capture changes with triggers.
    public static func servers(
        name: String = "RESHARD_PG", environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [PostgresEndpoint] {
        var servers: [PostgresEndpoint] = []
        for index in 1...16 {
            guard let url = environment["\(name)_\(index)"], let endpoint = try? PostgresEndpoint(url: url) else { break }
            servers.append(endpoint)
        }
        return servers
    }

    /// Creates an empty database with a fresh name on `server`.
    public static func createDatabase(on server: PostgresEndpoint, prefix: String = "t") async throws -> PostgresEndpoint {
        let name = prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await withAdmin(server) { connection, logger in
            // The name is `[a-z0-9_]` by construction.
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""), logger: logger)
        }
        return server.database(String(name))
    }

    /// Drops the database, and first its replication slots when `slots` (a database with a
    /// slot cannot be dropped: without `slots`, a leaked slot keeps its database).
    public static func dropDatabase(_ database: PostgresEndpoint, slots: Bool = true) async throws {
        let name = database.database
        guard name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
            throw StoreError.backend("refusing to drop database \(name)")
        }
        try await withAdmin(database.database("postgres")) { connection, logger in
            if slots {
                // A closed store's server process may still hold its slot for a moment.
                try await connection.query(
                    """
                    SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                    WHERE database = \(name) AND active_pid IS NOT NULL
                    """, logger: logger)
                for attempt in 1...50 {
                    do {
                        try await connection.query(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = \(name)", logger: logger)
                        break
                    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" && attempt < 50 {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"), logger: logger)
        }
    }

    /// The replication slots of `database` (on its server), by name.
    public static func replicationSlots(of database: PostgresEndpoint) async throws -> [String] {
        let name = database.database
        return try await withAdmin(database.database("postgres")) { connection, logger in
            var slots: [String] = []
            let rows = try await connection.query(
                "SELECT slot_name::text FROM pg_replication_slots WHERE database = \(name)", logger: logger)
            for try await slot in rows.decode(String.self) { slots.append(slot) }
            return slots.sorted()
        }
    }

    @discardableResult
    private static func withAdmin<T: Sendable>(
        _ server: PostgresEndpoint, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        let logger = {
            var logger = Logger(label: "reshard.postgres.scratch")
            // Not .warning: PostgresNIO warns when the first lease beats the pool's run task to
            // the start, which only delays that lease.
            logger.logLevel = .error
            return logger
        }()
        // A minute, not the stores' five seconds: when the whole suite starts, some hundred
        // tests create databases at once on two cores, and a lease that waits longer than a
        // production timeout is load, not a fault under test.
        let pool = PostgresPool(endpoint: server.database("postgres"), logger: logger, leaseTimeout: .seconds(60))
        let result: T
        do {
            result = try await pool.withConnection { try await body($0, logger) }
        } catch {
            await pool.close()
            throw StoreError.backend("\(server): \(PostgresShardStore.message(error))")
        }
        await pool.close()
        return result
    }
}
