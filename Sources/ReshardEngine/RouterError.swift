import ReshardCore

/// An expected failure of a routed request, with a stable machine-readable code.
///
/// The server maps `kind` to an HTTP status; the code and message travel to the client in
/// `{"error":{"code","message"}}`.
public struct RouterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// How the failure should be answered.
    public enum Kind: Sendable, Hashable {
        /// The request is malformed (400).
        case badRequest
        /// The table or row does not exist (404).
        case notFound
        /// The name is taken (409).
        case conflict
        /// A write's condition did not hold (412).
        case preconditionFailed
        /// The request is too large (413).
        case tooLarge
        /// Retry later: the range is moving or a shard is down (503).
        case unavailable
    }

    /// How to answer.
    public let kind: Kind
    /// A stable snake_case code, such as `unknown_table`.
    public let code: String
    /// A sentence for humans.
    public let message: String
    /// Seconds after which a retry may succeed, for `unavailable`.
    public let retryAfterSeconds: Int?

    init(_ kind: Kind, _ code: String, _ message: String, retryAfterSeconds: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }

    static func unknownTable(_ name: String) -> RouterError {
        RouterError(.notFound, "unknown_table", "table \(name) does not exist")
    }
    static func invalidTableName(_ name: String) -> RouterError {
        RouterError(.badRequest, "invalid_table_name", "table names match [a-z][a-z0-9_]{0,62}; got \(quoted(name))")
    }
    static func invalidPrimaryKey(_ reason: String) -> RouterError {
        RouterError(.badRequest, "invalid_pk", reason)
    }
    static func invalidBody(_ reason: String) -> RouterError {
        RouterError(.badRequest, "invalid_body", reason)
    }
    static func missingShardKey(_ field: String, where place: String) -> RouterError {
        RouterError(.badRequest, "missing_shard_key", "the shard key \(field) is required \(place)")
    }
    static func invalidShardKey(_ reason: String) -> RouterError {
        RouterError(.badRequest, "invalid_shard_key", reason)
    }
    static func pkMismatch(_ field: String) -> RouterError {
        RouterError(.badRequest, "pk_mismatch", "the body's \(field) differs from the primary key in the URL")
    }
    static let rowNotFound = RouterError(.notFound, "not_found", "no such row")
    public static let preconditionFailed = RouterError(
        .preconditionFailed, "precondition_failed",
        "the row's current version does not satisfy If-Match or If-None-Match; nothing was written")
    static func tableExists(_ name: String) -> RouterError {
        RouterError(.conflict, "table_exists", "table \(name) already exists")
    }
    static func invalidTable(_ reason: String) -> RouterError {
        RouterError(.badRequest, "invalid_table", reason)
    }
    static func shardExists(_ id: String) -> RouterError {
        RouterError(.conflict, "shard_exists", "shard \(id) already exists")
    }
    static func invalidShardID(_ id: String) -> RouterError {
        RouterError(.badRequest, "invalid_shard_id", "shard ids match [a-z][a-z0-9_-]{0,31}; got \(quoted(id))")
    }
    static func rangeMoving(generation: UInt64) -> RouterError {
        RouterError(
            .unavailable, "range_moving", "the key's range is being moved (fenced at generation \(generation)); retry",
            retryAfterSeconds: 1)
    }
    static func shardUnavailable(_ shard: String, _ detail: String) -> RouterError {
        RouterError(.unavailable, "shard_unavailable", "shard \(shard) failed: \(detail)", retryAfterSeconds: 1)
    }

    /// Writes of the same primary key kept overtaking this request (a table with a primary-key
    /// lookup): nothing it did is visible, and a retry goes through.
    static func keyContended(_ pk: String) -> RouterError {
        RouterError(
            .unavailable, "key_contended", "concurrent writes of the row \(quoted(pk)) overtook this request; retry", retryAfterSeconds: 1)
    }
    /// A lookup entry that no write of this router could have made.
    static func corruptLookup(_ table: TableName, pk: String) -> RouterError {
        RouterError(.unavailable, "corrupt_lookup", "the lookup entry of \(table)/\(quoted(pk)) is unreadable", retryAfterSeconds: 1)
    }

    private static func quoted(_ text: String) -> String {
        let clipped = text.count > 80 ? String(text.prefix(80)) + "…" : text
        return "\"\(clipped)\""
    }
}

extension RouterError {
    /// A plan that cannot be made, as answered: an unknown shard or table is not found, a
    /// refusal that depends on the cluster's state (its load, its map) a conflict, the rest a
    /// bad request.
    public init(_ error: PlanError) {
        let kind: Kind =
            switch error.code {
            case "unknown_shard", "unknown_table": .notFound
            case "already_balanced", "no_load_data", "range_not_owned", "hot_key", "no_hot_range", "not_enough_load_data": .conflict
            default: .badRequest
            }
        self.init(kind, error.code, error.description)
    }
}
