import Foundation
import Hummingbird
import ReshardAPI
import ReshardCore
import ReshardEngine

/// The data API: row reads and writes, routed by the shard map. Open to applications; no token.
struct RowRoutes {
    let router: ShardRouter
    let maxBodyBytes: Int

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.put("tables/:table/rows/:pk") { request, context in try await put(request, context) }
        group.get("tables/:table/rows/:pk") { request, context in try await get(request, context) }
        group.delete("tables/:table/rows/:pk") { request, context in try await delete(request, context) }
        group.get("tables/:table/rows") { request, context in try await list(request, context) }
        // A row URL with no primary key (".../rows/" or ".../rows") is a client mistake worth naming.
        for method in [HTTPRequest.Method.put, .delete] {
            group.on("tables/:table/rows", method: method) { _, _ -> Response in
                throw APIError(.badRequest, code: "invalid_pk", message: "the primary key must not be empty")
            }
        }
        refuseOtherMethods(on: group, path: "tables/:table/rows/:pk", allowed: [.get, .put, .delete])
        refuseOtherMethods(on: group, path: "tables/:table/rows", allowed: [.get, .put, .delete])
    }

    private func put(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (table, pk) = try rowAddress(context)
        try RequestInput.requireJSON(request)
        let condition = try Preconditions.condition(request)
        let body = try await request.body.collect(upTo: maxBodyBytes)
        let receipt = try await router.put(table: table, pk: pk, body: Array(buffer: body), condition: condition)
        var response = try jsonResponse(receipt.created ? .created : .ok, API.WriteReceipt(receipt))
        response.headers[.eTag] = Preconditions.etag(receipt.version)
        if receipt.created { response.headers[.location] = Self.location(table: table, pk: pk) }
        return response
    }

    private func get(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (table, pk) = try rowAddress(context)
        let preconditions = try Preconditions.Read(request)
        let row = try await router.get(table: table, pk: pk, shardKey: try shardKeyParameter(request))
        if let answer = try preconditions.answer(version: row.version) { return answer }
        var response = jsonTextResponse(.ok, rowJSON(row))
        response.headers[.eTag] = Preconditions.etag(row.version)
        return response
    }

    private func delete(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (table, pk) = try rowAddress(context)
        let condition = try Preconditions.condition(request)
        let receipt = try await router.delete(table: table, pk: pk, shardKey: try shardKeyParameter(request), condition: condition)
        return try jsonResponse(.ok, API.DeleteReceipt(receipt))
    }

    /// The row's URL, its primary key percent-encoded as one path segment.
    static func location(table: String, pk: String) -> String {
        "/v1/tables/\(table)/rows/\(RequestInput.percentEncoded(pk))"
    }

    private func list(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let table = try RequestInput.path(context, "table")
        let query = try RequestInput.query(request)
        guard let shardKey = query["shard_key"] else {
            throw APIError(.badRequest, code: "missing_shard_key", message: "listing rows needs ?shard_key=")
        }
        let limit = try RequestInput.count(query["limit"], name: "limit", in: 1...ShardRouter.maxListLimit, default: 100)
        var cursor: ListCursor?
        if let token = query["cursor"] {
            guard let parsed = ListCursor(token: token) else {
                throw APIError(.badRequest, code: "invalid_cursor", message: "the cursor is not one a listing answered")
            }
            cursor = parsed
        }
        let page = try await router.listPage(table: table, shardKey: shardKey, limit: limit, after: cursor)
        var members = [
            ("shard_key", JSONText.quoted(shardKey)),
            ("rows", JSONText.array(page.rows.map(rowJSON))),
        ]
        if let next = page.next { members.append(("next_cursor", JSONText.quoted(next.token))) }
        return jsonTextResponse(.ok, JSONText.object(members))
    }

    private func rowAddress(_ context: BasicRequestContext) throws -> (table: String, pk: String) {
        (try RequestInput.path(context, "table"), try RequestInput.path(context, "pk"))
    }

    private func shardKeyParameter(_ request: Request) throws -> String? {
        try RequestInput.query(request)["shard_key"]
    }

    /// A `Row` with its body as the exact text the client stored (the documented exception to
    /// answering with ReshardAPI values): parsing and re-encoding it could change numbers,
    /// escapes and member order.
    private func rowJSON(_ row: RowRead) -> String {
        JSONText.object([
            ("pk", JSONText.quoted(row.pk)),
            ("version", String(row.version)),
            ("shard", JSONText.quoted(row.shard.rawValue)),
            ("row", row.body),
        ])
    }
}

/// Registers a 405 with an Allow header for the methods a path does not serve (Hummingbird
/// answers them 404 by default, which hides a client's real mistake).
func refuseOtherMethods(on group: RouterGroup<BasicRequestContext>, path: RouterPath, allowed: [HTTPRequest.Method]) {
    // HEAD goes wherever GET does (the router generates it), so it is allowed there too.
    let allowed = allowed.contains(.get) && !allowed.contains(.head) ? allowed + [.head] : allowed
    let all: [HTTPRequest.Method] = [.get, .put, .post, .delete, .patch, .head, .options]
    for method in all where !allowed.contains(method) {
        group.on(path, method: method) { _, _ -> Response in throw APIError.methodNotAllowed(allowed) }
    }
}
