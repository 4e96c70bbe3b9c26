import NIOHTTP1
import ReshardAPI

/// The admin API (bearer token `Configuration.adminToken`), with ReshardAPI's types both ways.
extension ReshardClient {
    /// GETs an admin route and decodes its answer.
    public func adminGet<T: Decodable>(_ type: T.Type, _ path: String) async throws -> T {
        try await call(T.self, .GET, path, access: .admin, replay: .safe)
    }

    /// POSTs `body` (or nothing) to an admin route and decodes its answer. Commands are not
    /// idempotent, so only an answer that says nothing happened is retried.
    public func adminPost<T: Decodable>(_ type: T.Type, _ path: String, body: (some Encodable)? = Optional<API.Approve>.none) async throws
        -> T
    {
        let bytes = try body.map { Array(try API.encode($0)) }
        return try await call(T.self, .POST, path, body: bytes, access: .admin, replay: .ifNotWritten)
    }

    /// Creates a table.
    @discardableResult
    public func createTable(_ name: String, primaryKey: String, shardKey: String? = nil) async throws -> API.Table {
        try await adminPost(API.Table.self, "/v1/tables", body: API.CreateTable(name: name, primaryKey: primaryKey, shardKey: shardKey))
    }

    /// The tables.
    public func tables() async throws -> [API.Table] {
        try await adminGet(API.TableList.self, "/v1/tables").tables
    }

    /// Registers shard `id` (empty; an embedded one in the server's data folder unless `url` names a PostgreSQL database).
    @discardableResult
    public func addShard(_ id: String, url: String? = nil) async throws -> API.ShardCreated {
        try await adminPost(API.ShardCreated.self, "/v1/shards", body: API.CreateShard(id: id, url: url))
    }

    /// The cluster as the router sees it.
    public func cluster() async throws -> API.Cluster {
        try await adminGet(API.Cluster.self, "/v1/cluster")
    }

    /// Plans (`dryRun`) or starts a migration.
    public func createMigration(_ request: API.CreateMigration) async throws -> API.MigrationCreated {
        try await adminPost(API.MigrationCreated.self, "/v1/migrations", body: request)
    }

    /// A migration's status.
    public func migration(_ id: String) async throws -> API.MigrationDetail {
        try await adminGet(API.MigrationDetail.self, "/v1/migrations/\(Self.escape(id))")
    }

    /// The migrations, newest first.
    public func migrations() async throws -> API.MigrationList {
        try await adminGet(API.MigrationList.self, "/v1/migrations")
    }

    /// An operator command: `approve`, `pause`, `resume` or `rollback`.
    public func command(_ command: MigrationCommand, migration id: String) async throws -> API.CommandResult {
        try await adminPost(API.CommandResult.self, "/v1/migrations/\(Self.escape(id))/\(command.rawValue)")
    }

    /// The commands an operator gives a migration.
    public enum MigrationCommand: String, Sendable, CaseIterable {
        case approve, pause, resume, rollback
    }
}
