import ReshardCore

/// Where a shard's data lives.
public enum ShardLocation: Sendable, Hashable, Codable {
    /// A SQLite file; a relative path is resolved against the data folder.
    case sqlite(path: String)

    /// The backend's name as stored and shown.
    public var backend: String {
        switch self {
        case .sqlite: "sqlite"
        }
    }

    /// The path or address, as stored and shown.
    public var address: String {
        switch self {
        case .sqlite(let path): path
        }
    }
}

/// A registered shard.
public struct ShardRecord: Sendable, Hashable {
    /// The shard's name.
    public let id: ShardID
    /// Where its data lives.
    public let location: ShardLocation

    /// A shard record.
    public init(id: ShardID, location: ShardLocation) {
        self.id = id
        self.location = location
    }
}

/// The cluster's durable description: tables, shards and shard maps by generation.
/// Every implementation passes the shared metadata conformance tests.
public protocol MetadataStore: Sendable {
    /// Every table, by name.
    func tables() async throws -> [TableDefinition]

    /// Records a new table; throws `MetadataError.tableExists` when the name is taken.
    func createTable(_ table: TableDefinition) async throws

    /// Every registered shard, by name.
    func shards() async throws -> [ShardRecord]

    /// Registers a shard; throws `MetadataError.shardExists` when the name is taken.
    func addShard(_ shard: ShardRecord) async throws

    /// The shard map with the highest generation, if any was published.
    func currentShardMap() async throws -> ShardMap?

    /// The shard map of one generation, if it was published.
    func shardMap(generation: UInt64) async throws -> ShardMap?

    /// Publishes `map` only if the current generation is `expected` (nil: none yet) and
    /// `map.generation` is greater; otherwise throws `MetadataError.generationConflict`.
    func publish(_ map: ShardMap, replacing expected: UInt64?) async throws

    /// Stores the journal of a migration (its state machine, encoded), replacing the last one.
    func saveMigration(id: String, journal: String) async throws

    /// Every migration's journal, oldest first.
    func migrations() async throws -> [(id: String, journal: String)]
}

/// An expected metadata failure.
public struct MetadataError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case tableExists(TableName)
        case shardExists(ShardID)
        case generationConflict(expected: UInt64?, found: UInt64?)
        case corrupt(String)
    }

    private let code: Code

    /// A table of that name exists.
    public static func tableExists(_ name: TableName) -> MetadataError { MetadataError(code: .tableExists(name)) }
    /// A shard of that name exists.
    public static func shardExists(_ id: ShardID) -> MetadataError { MetadataError(code: .shardExists(id)) }
    /// Another writer published a shard map first.
    public static func generationConflict(expected: UInt64?, found: UInt64?) -> MetadataError {
        MetadataError(code: .generationConflict(expected: expected, found: found))
    }
    /// Stored metadata could not be read back.
    public static func corrupt(_ what: String) -> MetadataError { MetadataError(code: .corrupt(what)) }

    /// Whether the name was already taken.
    public var isConflict: Bool {
        switch code {
        case .tableExists, .shardExists, .generationConflict: true
        case .corrupt: false
        }
    }

    /// A sentence for logs and API errors.
    public var description: String {
        switch code {
        case .tableExists(let name): "table \(name) already exists"
        case .shardExists(let id): "shard \(id) already exists"
        case .generationConflict(let expected, let found):
            "shard map generation is \(found.map(String.init) ?? "none"), expected \(expected.map(String.init) ?? "none")"
        case .corrupt(let what): "metadata is corrupt: \(what)"
        }
    }
}
