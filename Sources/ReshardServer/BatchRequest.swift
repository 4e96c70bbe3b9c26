import ReshardCore
import ReshardEngine

/// The bodies of `rows:batch_get` and `rows:batch_write`, read strictly: a batch whose shape is
/// wrong anywhere (an unknown member, a key that is no key, a malformed condition, too many
/// items) is refused whole with a 400 naming the item, and nothing is read or written. What
/// only the router can judge (a primary key that differs from the row's, a missing shard key, a
/// failed condition) is answered per item.
///
/// Each put's row is cut out of the batch as the exact bytes the client sent, as a single PUT
/// stores them.
enum BatchRequest {
    /// The reads of a `batch_get` body: `{"items":[{"pk":…,"shard_key":…},…]}`.
    static func reads(_ bytes: [UInt8]) throws -> [ShardRouter.BatchRead] {
        try items(bytes).enumerated().map { position, item in
            try item.allow(["pk", "shard_key"], at: position)
            return ShardRouter.BatchRead(pk: try item.key("pk", at: position), shardKey: try item.optionalKey("shard_key", at: position))
        }
    }

    /// The writes of a `batch_write` body: items `{"op":"put","pk":…,"row":{…}}` or
    /// `{"op":"delete","pk":…,"shard_key":…}`, each with `if_match` or `if_none_match` as the
    /// headers take them.
    static func writes(_ bytes: [UInt8]) throws -> [ShardRouter.BatchWrite] {
        try items(bytes).enumerated().map { position, item in
            let pk = try item.key("pk", at: position)
            let condition = WriteCondition(
                ifMatch: try item.tags("if_match", strong: true, at: position),
                ifNoneMatch: try item.tags("if_none_match", strong: false, at: position))
            switch item.members["op"] {
            case .string("put"):
                try item.allow(["op", "pk", "row", "if_match", "if_none_match"], at: position)
                guard let span = item.spans["row"], item.bytes[span.lowerBound] == UInt8(ascii: "{") else {
                    throw invalid(position, "a put needs \"row\", a JSON object")
                }
                return .put(pk: pk, body: Array(item.bytes[span]), condition: condition.isEmpty ? nil : condition)
            case .string("delete"):
                try item.allow(["op", "pk", "shard_key", "if_match", "if_none_match"], at: position)
                return .delete(
                    pk: pk, shardKey: try item.optionalKey("shard_key", at: position), condition: condition.isEmpty ? nil : condition)
            default:
                throw invalid(position, "\"op\" must be \"put\" or \"delete\"")
            }
        }
    }

    /// One item: its members and where each value lies in `bytes`.
    struct Item {
        let bytes: [UInt8]
        let members: [String: StrictJSON.Member]
        let spans: [String: Range<Int>]

        func allow(_ names: Set<String>, at position: Int) throws {
            if let unknown = members.keys.sorted().first(where: { !names.contains($0) }) {
                throw invalid(position, "unknown member \"\(unknown.prefix(40))\" (allowed: \(names.sorted().joined(separator: ", ")))")
            }
        }

        func key(_ name: String, at position: Int) throws -> String {
            guard let key = try optionalKey(name, at: position) else { throw invalid(position, "\"\(name)\" is required") }
            return key
        }

        /// A key member: a string, or an integer in decimal, that `RowKey` accepts.
        func optionalKey(_ name: String, at position: Int) throws -> String? {
            guard let member = members[name] else { return nil }
            guard let key = member.keyText else { throw invalid(position, "\"\(name)\" must be a string or an integer") }
            if let problem = RowKey.problem(key) { throw invalid(position, "\"\(name)\" \(problem)") }
            return key
        }

        func tags(_ name: String, strong: Bool, at position: Int) throws -> WriteCondition.Tags? {
            guard let member = members[name] else { return nil }
            guard case .string(let text) = member, let tags = Preconditions.parse(text, strong: strong) else {
                throw invalid(position, "\"\(name)\" must be * or a list of entity tags such as \"\\\"17\\\"\"")
            }
            return tags
        }
    }

    /// The items of `{"items":[…]}`, at most `ShardRouter.maxBatchItems`.
    static func items(_ bytes: [UInt8]) throws -> [Item] {
        let document: (members: [String: StrictJSON.Member], spans: [String: Range<Int>])
        do {
            document = try StrictJSON.objectSpans(bytes)
        } catch {
            throw APIError.invalidBody(error.description)
        }
        guard document.members.keys.allSatisfy({ $0 == "items" }), let span = document.spans["items"] else {
            throw APIError.invalidBody("a batch is {\"items\": [...]} and nothing else")
        }
        let list = Array(bytes[span])
        guard list.first == UInt8(ascii: "[") else { throw APIError.invalidBody("\"items\" must be an array") }
        let elements: [Range<Int>]
        do {
            elements = try StrictJSON.arrayElements(list)
        } catch {
            throw APIError.invalidBody("\"items\": \(error.description)")
        }
        guard elements.count <= ShardRouter.maxBatchItems else {
            throw APIError(
                .badRequest, code: "batch_too_large",
                message: "a batch holds at most \(ShardRouter.maxBatchItems) items, not \(elements.count)")
        }
        return try elements.enumerated().map { position, element in
            let itemBytes = Array(list[element])
            guard itemBytes.first == UInt8(ascii: "{") else { throw invalid(position, "an item must be a JSON object") }
            do {
                let (members, spans) = try StrictJSON.objectSpans(itemBytes)
                return Item(bytes: itemBytes, members: members, spans: spans)
            } catch {
                throw invalid(position, "\(error)")
            }
        }
    }

    static func invalid(_ position: Int, _ reason: String) -> APIError {
        APIError(.badRequest, code: "invalid_item", message: "items[\(position)]: \(reason)")
    }
}
