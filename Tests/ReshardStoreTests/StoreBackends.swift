import Foundation
import Logging
import ReshardCore
import ReshardStore
import Testing

/// The backends every conformance test runs on. A backend joins the suite by adding a case here.
///
/// PostgreSQL runs when `scripts/postgres` has started servers (`RESHARD_PG_1` …, as
/// `scripts/test` does); `RESHARD_REQUIRE_POSTGRES=1` makes their absence a failure rather than
/// a quieter suite.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    static var allCases: [StoreBackend] { PostgresScratch.servers().isEmpty ? [.sqlite] : [.sqlite, .postgres] }

    /// Backends with a metadata store.
    static var metadataCases: [StoreBackend] { [.sqlite] }

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty shard store of this backend, then removes it.
    func withShard(_ name: String = "s1", _ body: (any ShardStore) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            try await body(try SQLiteShardStore(shardID: ShardID(name)!, path: folder.path + "/\(name).sqlite"))
        case .postgres:
            let server = try #require(PostgresScratch.servers().first)
            let database = try await PostgresScratch.createDatabase(on: server)
            var logger = Logger(label: "reshard.test")
            logger.logLevel = .warning
            let store = try await PostgresShardStore.open(shardID: ShardID(name)!, endpoint: database, logger: logger)
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
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let store = try SQLiteMetadataStore(path: folder.path + "/meta.sqlite")
            try await body(store)
            await store.close()
        case .postgres:
            Issue.record("no PostgreSQL metadata store yet")
        }
    }
}

@Suite struct BackendSetupTests {
    /// `scripts/test` asks for PostgreSQL: a run without it must fail, not pass on SQLite alone.
    @Test func postgresIsPresentWhenRequired() {
        if ProcessInfo.processInfo.environment["RESHARD_REQUIRE_POSTGRES"] == "1" {
            #expect(!PostgresScratch.servers().isEmpty, "RESHARD_REQUIRE_POSTGRES=1 but no RESHARD_PG_1 server")
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
