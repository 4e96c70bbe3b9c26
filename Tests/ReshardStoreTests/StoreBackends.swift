import Foundation
import Logging
import ReshardCore
import ReshardTestKit
import Testing

// Testable for the pool's connections: tests cut sessions off on the server.
@testable import ReshardStore

/// What the conformance suites ask of a backend beyond opening its stores (`ReshardTestKit`).
///
/// PostgreSQL runs when `scripts/postgres` has started servers (`RESHARD_PG_1` …, as
/// `scripts/test` does); `RESHARD_REQUIRE_POSTGRES=1` makes their absence a failure rather than
/// a quieter suite.
extension ShardBackend {
    /// Backends with a metadata store of their own (how shards capture changes does not concern it).
    static var metadataCases: [ShardBackend] {
        available.filter { backend in
            switch backend {
            case .sqlite, .postgres, .memory: true
            case .postgresTriggers: false
            }
        }
    }

    /// Whether two handles of this backend's metadata are two processes' view of it: changes
    /// made through one are announced to the other's watchers, and leadership is contended
    /// between them and passes on when a holder's connection dies. A second SQLite handle on
    /// the same file only hears its own changes, so SQLite tests share one handle.
    var metadataSpansProcesses: Bool {
        switch self {
        case .sqlite, .memory: false
        case .postgres, .postgresTriggers: true
        }
    }

    /// Ends, on the server, every session of `store`'s database that calls itself `application`
    /// (its `application_name`), as a crashed process or a failed network would (PostgreSQL only).
    static func terminateSessions(_ application: String, of store: any MetadataStore) async throws {
        let database = try #require((store as? PostgresMetadataStore)?.endpoint)
        let pool = PostgresPool(endpoint: database, logger: logger)
        do {
            // Two steps: in one statement the server may call pg_terminate_backend before it
            // has filtered the sessions.
            let pids = try await pool.withConnection { connection in
                try await connection.query(
                    """
                    SELECT pid FROM pg_stat_activity WHERE application_name = \(application) AND datname = current_database()
                    """, logger: logger
                ).decode(Int32.self).reduce(into: [Int32]()) { $0.append($1) }
            }
            #expect(!pids.isEmpty, "no session named \(application)")
            for pid in pids {
                try await pool.withConnection { connection in
                    _ = try await connection.query("SELECT pg_terminate_backend(\(pid))", logger: logger).collect()
                }
            }
        } catch {
            await pool.close()
            throw error
        }
        await pool.close()
    }

    private static var logger: Logger {
        var logger = Logger(label: "reshard.test")
        logger.logLevel = .warning
        return logger
    }
}

@Suite struct BackendSetupTests {
    /// `scripts/test` asks for PostgreSQL: a run without it must fail, not pass on SQLite alone.
    @Test func postgresIsPresentWhenRequired() {
        if ProcessInfo.processInfo.environment["RESHARD_REQUIRE_POSTGRES"] == "1" {
            #expect(ShardBackend.postgres.isAvailable, "RESHARD_REQUIRE_POSTGRES=1 but no RESHARD_PG_1 server")
            #expect(
                ShardBackend.postgresTriggers.isAvailable,
                "RESHARD_REQUIRE_POSTGRES=1 but no RESHARD_PG_REPLICA_1 server (wal_level = replica, for the trigger fallback)")
        }
    }
}
