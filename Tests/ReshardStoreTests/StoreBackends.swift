import Foundation
import Logging
import ReshardCore
import ReshardTestKit
import Testing

// Testable for the pool's connections: tests cut sessions off on the server.
@testable import ReshardStore

/// The backends every conformance test runs on. A backend joins the suite by adding a case here.
///
/// PostgreSQL runs when `scripts/postgres` has started servers (`RESHARD_PG_1` …, as
/// `scripts/test` does); `RESHARD_REQUIRE_POSTGRES=1` makes their absence a failure rather than
/// a quieter suite.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres
    /// PostgreSQL with `wal_level = replica`: changes are captured by triggers.
    case postgresTriggers = "postgres-triggers"
    /// The test kit's in-memory stores, which the simulation runs on.
    case memory

    static var allCases: [StoreBackend] {
        [.sqlite, .memory] + (PostgresScratch.servers().isEmpty ? [] : [.postgres])
            + (PostgresScratch.servers(name: "RESHARD_PG_REPLICA").isEmpty ? [] : [.postgresTriggers])
    }

    /// Backends with a metadata store (how shards capture changes does not concern it).
    static var metadataCases: [StoreBackend] { allCases.filter { $0 != .postgresTriggers } }

    /// Whether two handles of this backend's metadata are two processes' view of it: changes
    /// made through one are announced to the other's watchers, and leadership is contended
    /// between them and passes on when a holder's connection dies. A second SQLite handle on
    /// the same file only hears its own changes, so SQLite tests share one handle.
    var metadataSpansProcesses: Bool { self == .postgres }

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty shard store of this backend, then removes it.
    func withShard(_ name: String = "s1", _ body: (any ShardStore) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            try await body(try SQLiteShardStore(shardID: ShardID(name)!, path: folder.path + "/\(name).sqlite"))
        case .memory:
            try await body(MemoryShardStore(shardID: ShardID(name)!))
        case .postgres, .postgresTriggers:
            let server = try #require(
                self == .postgres ? PostgresScratch.servers().first : PostgresScratch.servers(name: "RESHARD_PG_REPLICA").first)
            let database = try await PostgresScratch.createDatabase(on: server)
            var logger = Logger(label: "reshard.test")
            logger.logLevel = .warning
            let store = try await PostgresShardStore.open(shardID: ShardID(name)!, endpoint: database, logger: logger)
            #expect((store.capture == .logicalDecoding) == (self == .postgres), "\(store.capture)")
            do {
                try await body(store)
            } catch {
                await store.close()
                try await PostgresScratch.dropDatabase(database)
                throw error
            }
            await store.close()
            try await PostgresScratch.dropDatabase(database)
        }
    }

    /// Runs `body` with a fresh, empty metadata store of this backend, then removes it.
    func withMetadata(_ body: (any MetadataStore) async throws -> Void) async throws {
        try await withMetadataPair { first, _ in try await body(first) }
    }

    /// Runs `body` with two handles on one fresh, empty metadata store, then closes both and
    /// removes it. On PostgreSQL they are two store instances, as two processes would open;
    /// on SQLite both are the same handle (see `metadataSpansProcesses`). `body` may close
    /// either handle itself.
    func withMetadataPair(_ body: (_ first: any MetadataStore, _ second: any MetadataStore) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let store = try SQLiteMetadataStore(path: folder.path + "/meta.sqlite")
            do {
                try await body(store, store)
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        case .memory:
            let store = MemoryMetadataStore()
            try await body(store, store)
            await store.close()
        case .postgres, .postgresTriggers:
            let server = try #require(PostgresScratch.servers().first)
            let database = try await PostgresScratch.createDatabase(on: server)
            var stores: [PostgresMetadataStore] = []
            do {
                for _ in 0..<2 { stores.append(try await PostgresMetadataStore.open(endpoint: database, logger: Self.logger)) }
                try await body(stores[0], stores[1])
            } catch {
                for store in stores { await store.close() }
                try await PostgresScratch.dropDatabase(database)
                throw error
            }
            for store in stores { await store.close() }
            try await PostgresScratch.dropDatabase(database)
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
            #expect(!PostgresScratch.servers().isEmpty, "RESHARD_REQUIRE_POSTGRES=1 but no RESHARD_PG_1 server")
            #expect(
                !PostgresScratch.servers(name: "RESHARD_PG_REPLICA").isEmpty,
                "RESHARD_REQUIRE_POSTGRES=1 but no RESHARD_PG_REPLICA_1 server (wal_level = replica, for the trigger fallback)")
        }
    }
}

/// A folder under the system temporary directory, unique per call.
struct TemporaryFolder: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "reshard-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
