import Foundation
import NIOHTTP1
import ReshardAPI

/// A row as read: its value and the version it was read at (its `ETag`).
public struct Versioned<Row: Sendable>: Sendable {
    public let pk: String
    public let version: UInt64
    /// The shard it was read from.
    public let shard: String
    public let value: Row
}

extension Versioned: Equatable where Row: Equatable {}

/// A write's precondition on the row it replaces.
public enum WriteCondition: Sendable, Hashable {
    /// Write whatever is stored.
    case none
    /// Only over a live row at this version (`If-Match`): a read-modify-write.
    case version(UInt64)
    /// Only over a live row (`If-Match: *`).
    case exists
    /// Only when no live row exists (`If-None-Match: *`): create once.
    case absent

    var headers: [(String, String)] {
        switch self {
        case .none: []
        case .version(let version): [("If-Match", ETag.of(version))]
        case .exists: [("If-Match", "*")]
        case .absent: [("If-None-Match", "*")]
        }
    }

    /// The members a batch item carries.
    var members: [String: String] {
        switch self {
        case .none: [:]
        case .version(let version): ["if_match": ETag.of(version)]
        case .exists: ["if_match": "*"]
        case .absent: ["if_none_match": "*"]
        }
    }
}

/// What a write did.
public struct WriteResult: Sendable, Hashable {
    public let pk: String
    /// The row's new version (its `ETag`); a tombstone's for a delete.
    public let version: UInt64
    public let shard: String
    /// The map generation the write was routed by.
    public let generation: UInt64
    /// Whether the write created the row (`201`).
    public let created: Bool
}

/// One item of `batchWrite`.
public struct BatchWriteItem: Sendable {
    enum Operation: Sendable {
        case put(body: [UInt8])
        case delete(shardKey: String?)
    }

    let pk: String
    let operation: Operation
    let condition: WriteCondition

    /// An upsert of `row` as row `pk`.
    public static func put(_ pk: String, _ row: some Encodable, condition: WriteCondition = .none) throws -> BatchWriteItem {
        BatchWriteItem(pk: pk, operation: .put(body: try ReshardClient.encodeRow(row)), condition: condition)
    }

    /// A delete of row `pk` (with its shard key when the table is not placed by its primary key).
    public static func delete(_ pk: String, shardKey: String? = nil, condition: WriteCondition = .none) -> BatchWriteItem {
        BatchWriteItem(pk: pk, operation: .delete(shardKey: shardKey), condition: condition)
    }
}

/// One page of a shard-key listing.
public struct RowPage<Row: Sendable>: Sendable {
    public let rows: [Versioned<Row>]
    /// The cursor of the next page; nil on the last.
    public let nextCursor: String?
}

extension ReshardClient {
    /// The row `pk` of `table`, decoded as `Row`; nil when it does not exist.
    public func get<Row: Decodable & Sendable>(
        _ type: Row.Type, table: String, pk: String, shardKey: String? = nil
    ) async throws -> Versioned<Row>? {
        let answer = try await send(
            .GET, rowPath(table, pk), query: shardKey.map { [("shard_key", $0)] } ?? [], access: .data, replay: .safe)
        if answer.status == 404, answer.error?.error.code == "not_found" { return nil }
        try Self.requireSuccess(answer)
        return try Self.decode(Envelope<Row>.self, answer.body).versioned
    }

    /// Writes `row` as row `pk` of `table` when `condition` holds (`ReshardClientError` with
    /// `isPreconditionFailed` otherwise, nothing written).
    @discardableResult
    public func put(_ row: some Encodable, table: String, pk: String, condition: WriteCondition = .none) async throws -> WriteResult {
        let answer = try await send(
            .PUT, rowPath(table, pk), headers: condition.headers, body: try Self.encodeRow(row), access: .data,
            replay: .ifNotWritten)
        try Self.requireSuccess(answer)
        let receipt = try Self.decode(API.WriteReceipt.self, answer.body)
        return WriteResult(
            pk: receipt.pk, version: receipt.version, shard: receipt.shard, generation: receipt.generation, created: answer.status == 201)
    }

    /// Deletes row `pk` when `condition` holds; false when there was no row to delete.
    @discardableResult
    public func delete(table: String, pk: String, shardKey: String? = nil, condition: WriteCondition = .none) async throws -> Bool {
        let answer = try await send(
            .DELETE, rowPath(table, pk), query: shardKey.map { [("shard_key", $0)] } ?? [], headers: condition.headers, access: .data,
            replay: .ifNotWritten)
        if answer.status == 404, answer.error?.error.code == "not_found" { return false }
        try Self.requireSuccess(answer)
        return true
    }

    /// Read-modify-write of row `pk`: reads it, applies `change`, and writes the result only over
    /// the version read (`If-Match`), reading again whenever another writer got there first, up
    /// to `attempts` times. `change` gets nil for a row that does not exist yet (the write then
    /// creates it only if still absent) and returns nil to leave the row as it is.
    public func update<Row: Codable & Sendable>(
        _ type: Row.Type, table: String, pk: String, shardKey: String? = nil, attempts: Int = 64,
        _ change: @Sendable (Row?) throws -> Row?
    ) async throws -> WriteResult? {
        var last: ReshardClientError?
        for _ in 0..<max(1, attempts) {
            let current = try await get(Row.self, table: table, pk: pk, shardKey: shardKey)
            guard let next = try change(current?.value) else { return nil }
            do {
                return try await put(next, table: table, pk: pk, condition: current.map { .version($0.version) } ?? .absent)
            } catch let error as ReshardClientError where error.isPreconditionFailed {
                last = error
            }
        }
        throw last ?? ReshardClientError.invalidConfiguration("update needs at least one attempt")
    }

    /// Reads up to 100 rows at once; for each item, in order, the row or nil (not found).
    /// Items the router could not answer for a while (`503`) are asked again, as a single read would be.
    public func batchGet<Row: Decodable & Sendable>(
        _ type: Row.Type, table: String, _ keys: [(pk: String, shardKey: String?)]
    ) async throws -> [Versioned<Row>?] {
        var results = [Versioned<Row>??](repeating: nil, count: keys.count)
        try await retryingItems(count: keys.count, replay: .safe) { pending in
            let items = pending.map { index in
                var item = ["pk": keys[index].pk]
                if let shardKey = keys[index].shardKey { item["shard_key"] = shardKey }
                return item
            }
            let answers = try await batch(table, "batch_get", body: try JSONEncoder().encode(["items": items]))
            for (index, answer) in zip(pending, answers) {
                switch answer.status {
                case 200: results[index] = .some(try Self.decode(Envelope<Row>.self, answer.raw).versioned)
                case 404 where answer.code == "not_found": results[index] = .some(nil)
                default: continue
                }
            }
            return zip(pending, answers).map { ($0, $1) }
        }
        return results.map { $0 ?? nil }
    }

    /// Writes up to 100 items at once, each with its own condition; the results in order.
    /// An item the router refused without writing it (`503 range_moving`, …) is sent again in
    /// a later batch; any other failure is thrown once the batch is done, after every item that
    /// could be written was.
    public func batchWrite(table: String, _ items: [BatchWriteItem]) async throws -> [Result<WriteResult, ReshardClientError>] {
        var results = [Result<WriteResult, ReshardClientError>?](repeating: nil, count: items.count)
        try await retryingItems(count: items.count, replay: .ifNotWritten) { pending in
            var body: [UInt8] = Array(#"{"items":["#.utf8)
            for (position, index) in pending.enumerated() {
                if position > 0 { body.append(UInt8(ascii: ",")) }
                body += try Self.itemJSON(items[index])
            }
            body += Array("]}".utf8)
            let answers = try await batch(table, "batch_write", body: Data(body))
            for (index, answer) in zip(pending, answers) {
                if answer.status == 200 || answer.status == 201 {
                    let receipt = try Self.decode(API.WriteReceipt.self, answer.raw)
                    results[index] = .success(
                        WriteResult(
                            pk: receipt.pk, version: receipt.version, shard: receipt.shard, generation: receipt.generation,
                            created: answer.status == 201))
                } else {
                    results[index] = .failure(.api(Answer(status: answer.status, headers: [:], body: answer.errorBody)))
                }
            }
            return zip(pending, answers).map { ($0, $1) }
        }
        return results.map { $0 ?? .failure(.transport("the item was not answered")) }
    }

    /// One page of the live rows sharing `shardKey`, after `cursor`.
    public func listPage<Row: Decodable & Sendable>(
        _ type: Row.Type, table: String, shardKey: String, limit: Int = 100, cursor: String? = nil
    ) async throws -> RowPage<Row> {
        var query = [("shard_key", shardKey), ("limit", String(limit))]
        if let cursor { query.append(("cursor", cursor)) }
        let page = try await call(Page<Row>.self, .GET, "/v1/tables/\(Self.escape(table))/rows", query: query, access: .data, replay: .safe)
        return RowPage(rows: page.rows.map(\.versioned), nextCursor: page.nextCursor)
    }

    /// Every live row sharing `shardKey`, page after page: each row that lives through the whole
    /// listing comes exactly once, also while its range migrates.
    public func listAll<Row: Decodable & Sendable>(
        _ type: Row.Type, table: String, shardKey: String, pageSize: Int = 100
    ) -> AsyncThrowingStream<Versioned<Row>, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var cursor: String?
                    repeat {
                        let page = try await listPage(Row.self, table: table, shardKey: shardKey, limit: pageSize, cursor: cursor)
                        for row in page.rows { continuation.yield(row) }
                        cursor = page.nextCursor
                    } while cursor != nil
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: - Plumbing

    func rowPath(_ table: String, _ pk: String) -> String {
        "/v1/tables/\(Self.escape(table))/rows/\(Self.escape(pk))"
    }

    /// A row's JSON text: `JSONEncoder`'s, unless `row` is already the bytes to store.
    static func encodeRow(_ row: some Encodable) throws -> [UInt8] {
        if let raw = row as? RawJSON { return raw.bytes }
        do {
            return Array(try JSONEncoder().encode(row))
        } catch {
            throw ReshardClientError.invalidConfiguration("the row cannot be encoded as JSON: \(error)")
        }
    }

    static func itemJSON(_ item: BatchWriteItem) throws -> [UInt8] {
        var members: [String: String] = ["pk": item.pk]
        for (name, value) in item.condition.members { members[name] = value }
        switch item.operation {
        case .put: members["op"] = "put"
        case .delete(let shardKey):
            members["op"] = "delete"
            if let shardKey { members["shard_key"] = shardKey }
        }
        var json = Array(try JSONEncoder().encode(members))
        // The row goes in as its own bytes, so that what is stored is exactly what was encoded.
        if case .put(let body) = item.operation {
            json.removeLast()
            json += Array(#","row":"#.utf8) + body + [UInt8(ascii: "}")]
        }
        return json
    }

    /// One answer of a batch: its status and its raw JSON.
    struct ItemAnswer {
        let status: Int
        let code: String?
        let retryAfter: Int?
        /// The item's JSON text.
        let raw: [UInt8]

        /// `{"error": …}` of a failed item, as a single request's error body.
        var errorBody: [UInt8] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any], let error = object["error"],
                let data = try? JSONSerialization.data(withJSONObject: ["error": error])
            else { return raw }
            return Array(data)
        }
    }

    private func batch(_ table: String, _ operation: String, body: Data) async throws -> [ItemAnswer] {
        let answer = try await send(
            .POST, "/v1/tables/\(Self.escape(table))/rows:\(operation)", body: Array(body), access: .data, replay: .safe)
        try Self.requireSuccess(answer)
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
            let items = object["items"] as? [[String: Any]]
        else { throw ReshardClientError.decoding("a batch answer without items: \(answer.text.prefix(200))") }
        return try items.map { item in
            ItemAnswer(
                status: item["status"] as? Int ?? 0, code: (item["error"] as? [String: Any])?["code"] as? String,
                retryAfter: item["retry_after"] as? Int, raw: Array(try JSONSerialization.data(withJSONObject: item)))
        }
    }

    /// Runs `round` on the items not settled yet until none is left to retry: an item answered
    /// `503` is pending again (for writes only when the code says nothing was written), after
    /// the longest `retry_after` among them and a backoff, within the retry budget.
    private func retryingItems(
        count: Int, replay: Replay, _ round: ([Int]) async throws -> [(Int, ItemAnswer)]
    ) async throws {
        var pending = Array(0..<count)
        let deadline = ContinuousClock.now + configuration.retryBudget
        var backoff = configuration.initialBackoff
        // Sent in slices the server accepts.
        while !pending.isEmpty {
            var again: [Int] = []
            var wait = Duration.zero
            for start in stride(from: 0, to: pending.count, by: 100) {
                let slice = Array(pending[start..<min(start + 100, pending.count)])
                for (index, answer) in try await round(slice) where answer.status == 503 {
                    guard replay == .safe || Self.notWrittenCodes.contains(answer.code ?? "") else { continue }
                    again.append(index)
                    wait = max(wait, .seconds(answer.retryAfter ?? 0))
                }
            }
            let pause = max(Self.jittered(backoff), wait)
            guard !again.isEmpty, ContinuousClock.now + pause < deadline else { return }
            try await Task.sleep(for: pause)
            backoff = min(backoff * 2, configuration.maxBackoff)
            pending = again
        }
    }
}

/// JSON text to store as it is, byte for byte, in place of an `Encodable` value.
public struct RawJSON: Encodable, Sendable {
    public let bytes: [UInt8]

    public init(_ text: String) { bytes = Array(text.utf8) }

    public func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "RawJSON is sent as it is"))
    }
}

/// `{"pk","version","shard","row"}` with the row decoded as `Row`.
struct Envelope<Row: Decodable & Sendable>: Decodable {
    let pk: String
    let version: UInt64
    let shard: String
    let row: Row

    var versioned: Versioned<Row> { Versioned(pk: pk, version: version, shard: shard, value: row) }
}

/// A listing page as the router answers it.
struct Page<Row: Decodable & Sendable>: Decodable {
    let rows: [Envelope<Row>]
    let nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case rows
        case nextCursor = "next_cursor"
    }
}
