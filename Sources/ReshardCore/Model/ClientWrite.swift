/// A client write routed to a shard: an upsert when `body` is set, a delete when it is `nil`.
public struct ClientWrite: Sendable, Hashable {
    /// The row's table.
    public let table: TableName
    /// The primary key.
    public let pk: String
    /// The shard key value the router placed the row by.
    public let shardKey: String
    /// The JSON object text, or `nil` to delete.
    public let body: String?
    /// The router's hybrid-logical-clock timestamp; the shard assigns `max(current + 1, proposed)`.
    public let proposedVersion: UInt64
    /// The shard-map generation the router routed by; refused below a fence.
    public let generation: UInt64
    /// Checked against the stored row inside the write's transaction; `nil` writes whatever is there.
    public let condition: WriteCondition?

    /// A routed client write.
    public init(
        table: TableName, pk: String, shardKey: String, body: String?, proposedVersion: UInt64, generation: UInt64,
        condition: WriteCondition? = nil
    ) {
        self.table = table
        self.pk = pk
        self.shardKey = shardKey
        self.body = body
        self.proposedVersion = proposedVersion
        self.generation = generation
        self.condition = condition.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// What a client write did.
public enum WriteOutcome: Sendable, Hashable {
    /// The row now has this version; it was live before.
    case written(version: UInt64)
    /// The row now has this version and was not live before (absent or a tombstone): an upsert
    /// that created it.
    case created(version: UInt64)
    /// A delete of a row that does not exist (or is already a tombstone): nothing was written.
    case notFound
    /// The write's condition did not hold: nothing was written.
    case preconditionFailed

    /// The version written, if anything was.
    public var version: UInt64? {
        switch self {
        case .written(let version), .created(let version): version
        case .notFound, .preconditionFailed: nil
        }
    }

    /// The outcome of a write that checked `condition` against a row live at `live` (`nil`:
    /// absent or a tombstone) and, when it passed, wrote `body` at `version`. A store that
    /// reads the row in its write transaction decides with this, so every backend answers alike.
    public static func decide(
        condition: WriteCondition?, live: UInt64?, isDelete: Bool, write: () throws -> UInt64
    ) rethrows -> WriteOutcome {
        if let condition, !condition.admits(live: live) { return .preconditionFailed }
        if isDelete && live == nil { return .notFound }
        let version = try write()
        return live == nil ? .created(version: version) : .written(version: version)
    }
}
