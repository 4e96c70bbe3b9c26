import Foundation
import Hummingbird
import ReshardAPI
import ReshardCore
import ReshardEngine
import ReshardStore

/// Admin routes: tables, shards and the cluster view. Every one needs the bearer token.
struct AdminRoutes {
    let router: ShardRouter
    let maxBodyBytes: Int
    let newShardLocation: @Sendable (ShardID) -> ShardLocation

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.post("tables") { request, _ -> Response in
            let body: API.CreateTable = try await decode(request)
            let table = try await router.createTable(
                name: body.name, primaryKey: body.primaryKey, shardKey: body.shardKey ?? body.primaryKey)
            return try jsonResponse(.created, API.Table(table))
        }
        group.get("tables") { _, _ -> Response in
            try jsonResponse(.ok, API.TableList(tables: router.tables.map(API.Table.init)))
        }
        group.post("shards") { request, _ -> Response in
            let body: API.CreateShard = try await decode(request)
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
            return try jsonResponse(.created, API.ShardCreated(record))
        }
        group.get("shards") { _, _ -> Response in
            let cluster = try await router.cluster()
            return try jsonResponse(.ok, API.ShardList(shards: cluster.shards.map(API.ShardInfo.init)))
        }
        group.get("cluster") { _, _ -> Response in
            try jsonResponse(.ok, API.Cluster(try await router.cluster()))
        }
        group.get("load") { request, _ -> Response in
            let query = try RequestInput.query(request)
            var signal = LoadSignal.requests
            if let text = query["signal"] {
                guard let chosen = LoadSignal(rawValue: text) else {
                    throw APIError(.badRequest, code: "invalid_signal", message: "signal must be requests, bytes or time")
                }
                signal = chosen
            }
            let top = try RequestInput.count(query["top"], name: "top", in: 1...LoadRecorder.keyCapacity, default: 10)
            let windows = try RequestInput.count(
                query["windows"], name: "windows", in: 1...LoadSnapshot.reportedWindows, default: 10)
            let rules = HotSpotRules(signal: signal, sustainedWindows: windows)
            return try jsonResponse(.ok, API.LoadReport(try await router.clusterLoadView(rules: rules), rules: rules, top: top))
        }
        refuseOtherMethods(on: group, path: "tables", allowed: [.get, .post])
        refuseOtherMethods(on: group, path: "shards", allowed: [.get, .post])
        refuseOtherMethods(on: group, path: "cluster", allowed: [.get])
        refuseOtherMethods(on: group, path: "load", allowed: [.get])
    }

    private func decode<T: Decodable>(_ request: Request) async throws -> T {
        try await decodeJSON(request, maxBytes: maxBodyBytes)
    }
}
