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
        group.post("tables/:table/rows:batch_get") { request, context in try await batchGet(request, context) }
        group.post("tables/:table/rows:batch_write") { request, context in try await batchWrite(request, context) }
        // A row URL with no primary key (".../rows/" or ".../rows") is a client mistake worth naming.
        for method in [HTTPRequest.Method.put, .delete] {
            group.on("tables/:table/rows", method: method) { _, _ -> Response in
                throw APIError(.badRequest, code: "invalid_pk", message: "the primary key must not be empty")
            }
        }
        refuseOtherMethods(on: group, path: "tables/:table/rows/:pk", allowed: [.get, .put, .delete])
        refuseOtherMethods(on: group, path: "tables/:table/rows", allowed: [.get, .put, .delete])
        refuseOtherMethods(on: group, path: "tables/:table/rows:batch_get", allowed: [.post])
        refuseOtherMethods(on: group, path: "tables/:table/rows:batch_write", allowed: [.post])
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
        "/v1/tables/\(table)/rows/\(API.percentEncoded(pk))"
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

    /// The largest batch body: a full batch of small rows, or a few large ones.
    static let maxBatchBodyBytes = 8 << 20

    private func batchBody(_ request: Request) async throws -> [UInt8] {
        try RequestInput.requireJSON(request)
        do {
            return Array(buffer: try await request.body.collect(upTo: Self.maxBatchBodyBytes))
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, code: "body_too_large", message: "a batch body is at most \(Self.maxBatchBodyBytes) bytes")
        }
    }

    private func batchGet(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let table = try RequestInput.path(context, "table")
        let items = try BatchRequest.reads(try await batchBody(request))
        return Self.batchAnswer(items, try await router.batchGet(table: table, items), pk: \.pk) { _, row in
            [
                ("pk", JSONText.quoted(row.pk)), ("status", "200"), ("version", String(row.version)),
                ("shard", JSONText.quoted(row.shard.rawValue)), ("row", row.body),
            ]
        }
    }

    private func batchWrite(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let table = try RequestInput.path(context, "table")
        let items = try BatchRequest.writes(try await batchBody(request))
        return Self.batchAnswer(items, try await router.batchWrite(table: table, items), pk: \.pk) { item, receipt in
            var members = [
                ("pk", JSONText.quoted(receipt.pk)), ("status", receipt.created ? "201" : "200"), ("version", String(receipt.version)),
                ("shard", JSONText.quoted(receipt.shard.rawValue)), ("generation", String(receipt.generation)),
            ]
            if case .delete = item { members.append(("deleted", "true")) }
            return members
        }
    }

    /// `{"items":[…]}`: each item's success as `members` builds it, or its error, in order.
    private static func batchAnswer<Item, Value>(
        _ items: [Item], _ results: [Result<Value, RouterError>], pk: (Item) -> String,
        _ members: (Item, Value) -> [(String, String)]
    ) -> Response {
        let answers = zip(items, results).map { item, result in
            switch result {
            case .success(let value): JSONText.object(members(item, value))
            case .failure(let error): itemError(pk: pk(item), error)
            }
        }
        return jsonTextResponse(.ok, JSONText.object([("items", JSONText.array(answers))]))
    }

    /// A batch item's failure, with the status and error a single request would have answered.
    static func itemError(pk: String, _ error: RouterError) -> String {
        let answer = APIError(error)
        let detail = JSONText.object([("code", JSONText.quoted(answer.code)), ("message", JSONText.quoted(answer.message))])
        var members = [("pk", JSONText.quoted(pk)), ("status", String(answer.status.code)), ("error", detail)]
        if let seconds = error.retryAfterSeconds { members.append(("retry_after", String(seconds))) }
        return JSONText.object(members)
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
