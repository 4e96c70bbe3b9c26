import Foundation
import Hummingbird
import ReshardCore
import ReshardEngine
import ReshardStore

/// Admin routes: tables, shards and the cluster view. Every one needs the bearer token.
struct AdminRoutes {
    let router: ShardRouter
    let maxBodyBytes: Int
    let newShardLocation: @Sendable (ShardID) -> ShardLocation

    private struct CreateTable: Decodable {
        let name: String
        let primaryKey: String
        let shardKey: String?
        enum CodingKeys: String, CodingKey {
            case name
            case primaryKey = "primary_key"
            case shardKey = "shard_key"
        }
    }

    private struct CreateShard: Decodable {
        let id: String
        /// A PostgreSQL database (`postgres://USER@HOST:PORT/DATABASE`); without it the shard goes
        /// where the server puts new shards (a SQLite file in its data folder).
        let url: String?
    }

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.post("tables") { request, _ -> Response in
            let body: CreateTable = try await decode(request)
            let table = try await router.createTable(
                name: body.name, primaryKey: body.primaryKey, shardKey: body.shardKey ?? body.primaryKey)
            return jsonResponse(.created, tableJSON(table))
        }
        group.get("tables") { _, _ -> Response in
            jsonResponse(.ok, JSONText.object([("tables", JSONText.array(router.tables.map(tableJSON)))]))
        }
        group.post("shards") { request, _ -> Response in
            let body: CreateShard = try await decode(request)
            let location: @Sendable (ShardID) -> ShardLocation
            if let url = body.url {
                let endpoint: PostgresEndpoint
                do {
                    endpoint = try PostgresEndpoint(url: url, environment: [:])
                } catch {
                    throw APIError.invalidBody("\(error)")
                }
                guard endpoint.password == nil else {
                    throw APIError.invalidBody("put no password in a shard URL: each process reads PGPASSWORD")
                }
                location = { _ in .postgres(url: endpoint.description) }
            } else {
                location = newShardLocation
            }
            let record = try await router.addShard(id: body.id, location: location)
            return jsonResponse(.created, shardJSON(record))
        }
        group.get("shards") { _, _ -> Response in
            let cluster = try await router.cluster()
            return jsonResponse(.ok, JSONText.object([("shards", JSONText.array(cluster.shards.map(shardInfoJSON)))]))
        }
        group.get("cluster") { _, _ -> Response in
            jsonResponse(.ok, clusterJSON(try await router.cluster()))
        }
        refuseOtherMethods(on: group, path: "tables", allowed: [.get, .post])
        refuseOtherMethods(on: group, path: "shards", allowed: [.get, .post])
        refuseOtherMethods(on: group, path: "cluster", allowed: [.get])
    }

    private func decode<T: Decodable>(_ request: Request) async throws -> T {
        try await decodeJSON(request, maxBytes: maxBodyBytes)
    }

    private func tableJSON(_ table: TableDefinition) -> String {
        JSONText.object([
            ("name", JSONText.quoted(table.name.rawValue)),
            ("primary_key", JSONText.quoted(table.primaryKey)),
            ("shard_key", JSONText.quoted(table.shardKey)),
        ])
    }

    private func shardJSON(_ record: ShardRecord) -> String {
        JSONText.object([
            ("id", JSONText.quoted(record.id.rawValue)),
            ("backend", JSONText.quoted(record.location.backend)),
            ("address", JSONText.quoted(record.location.address)),
            ("ranges", "0"),
        ])
    }

    private func shardInfoJSON(_ shard: ShardInfo) -> String {
        JSONText.object([
            ("id", JSONText.quoted(shard.id.rawValue)),
            ("backend", JSONText.quoted(shard.backend)),
            ("address", JSONText.quoted(shard.address)),
            ("ranges", String(shard.ranges)),
            ("fraction", String(shard.fraction)),
            ("rows", String(shard.rows)),
        ])
    }

    private func clusterJSON(_ cluster: ClusterInfo) -> String {
        let ranges = cluster.map.assignments.map { assignment in
            JSONText.object([
                ("start", JSONText.quoted(assignment.range.startHex)),
                ("end", JSONText.quoted(assignment.range.endHex)),
                ("shard", JSONText.quoted(assignment.shard.rawValue)),
            ])
        }
        return JSONText.object([
            ("generation", String(cluster.map.generation)),
            ("shards", JSONText.array(cluster.shards.map(shardInfoJSON))),
            ("tables", JSONText.array(cluster.tables.map(tableJSON))),
            ("ranges", JSONText.array(ranges)),
        ])
    }
}
