import Foundation
import Logging
import ReshardCore
import ReshardStore

extension ShardBackend {
    /// Runs `body` with a fresh, empty shard store `name` of this backend, then closes and
    /// removes it. A PostgreSQL store is refused unless it captures changes the way its
    /// backend says, so a misconfigured server cannot pass for the other capture.
    public func withShardStore(_ name: String = "s1", _ body: (any ShardStore) async throws -> Void) async throws {
        guard let id = ShardID(name) else { throw ScratchError("invalid shard id \(name)") }
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            try await body(try SQLiteShardStore(shardID: id, path: folder.path + "/\(name).sqlite"))
        case .memory:
            try await body(MemoryShardStore(shardID: id))
        case .postgres, .postgresTriggers:
            let database = try await PostgresScratch.createDatabase(on: try loneServer())
            let store: PostgresShardStore
            do {
                store = try await PostgresShardStore.open(shardID: id, endpoint: database, logger: Self.logger)
            } catch {
                try await PostgresScratch.dropDatabase(database)
                throw error
            }
            do {
                guard (store.capture == .logicalDecoding) == (self == .postgres) else {
                    throw ScratchError("a \(self) store captures changes by \(store.capture)")
                }
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

    /// Runs `body` with a fresh, empty metadata store of this backend, then closes and removes it.
    /// It keeps the newest `eventsRetained` events (a test lowers it to see the log trimmed).
    public func withMetadataStore(
        eventsRetained: Int = MetadataEvent.retained, _ body: (any MetadataStore) async throws -> Void
    ) async throws {
        try await withMetadataStores(eventsRetained: eventsRetained) { first, _ in try await body(first) }
    }

    /// Runs `body` with two handles on one fresh, empty metadata store of this backend, then
    /// closes both and removes it. On PostgreSQL they are two store instances, as two processes
    /// would open; on SQLite both are the same handle, since a second SQLite handle on the same
    /// file would hear only its own changes. `body` may close either handle itself. Both keep the
    /// newest `eventsRetained` events.
    public func withMetadataStores(
        eventsRetained: Int = MetadataEvent.retained,
        _ body: (_ first: any MetadataStore, _ second: any MetadataStore) async throws -> Void
    ) async throws {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let store = try SQLiteMetadataStore(path: folder.path + "/meta.sqlite", eventsRetained: eventsRetained)
            do {
                try await body(store, store)
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        case .memory:
            let store = MemoryMetadataStore(eventsRetained: eventsRetained)
            try await body(store, store)
            await store.close()
        case .postgres, .postgresTriggers:
            let database = try await PostgresScratch.createDatabase(on: try loneServer())
            var stores: [PostgresMetadataStore] = []
            do {
                for _ in 0..<2 {
                    stores.append(
                        try await PostgresMetadataStore.open(endpoint: database, logger: Self.logger, eventsRetained: eventsRetained))
                }
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

    /// The server a lone store of this backend goes on.
    private func loneServer() throws -> PostgresEndpoint {
        let servers: [PostgresEndpoint] =
            switch self {
            case .sqlite, .memory: []
            case .postgres: PostgresScratch.servers()
            case .postgresTriggers: PostgresScratch.servers(name: PostgresScratch.replicaServers)
            }
        guard let server = servers.first else { throw ScratchError("no server for \(self) in the environment") }
        return server
    }

    /// Warnings and worse: the suites' output stays readable.
    static var logger: Logger {
        var logger = Logger(label: "reshard.test")
        logger.logLevel = .warning
        return logger
    }
}

/// A folder under the system temporary directory, unique per call.
public struct TemporaryFolder: Sendable {
    /// Its absolute path.
    public let path: String

    /// Creates the folder.
    public init() throws {
        path = NSTemporaryDirectory() + "reshard-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Deletes the folder and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Scratch storage that could not be set up as asked.
struct ScratchError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ description: String) { self.description = description }
}
