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

    /// A routed client write.
    public init(table: TableName, pk: String, shardKey: String, body: String?, proposedVersion: UInt64, generation: UInt64) {
        self.table = table
        self.pk = pk
        self.shardKey = shardKey
        self.body = body
        self.proposedVersion = proposedVersion
        self.generation = generation
    }
}

/// What a client write did.
public enum WriteOutcome: Sendable, Hashable {
    /// The row now has this version.
    case written(version: UInt64)
    /// A delete of a row that does not exist (or is already a tombstone): nothing was written.
    case notFound
}
