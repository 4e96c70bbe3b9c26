import ReshardCore
import ReshardStore

/// The shards a migrator works on, by name, and the tables they hold.
public protocol StoreDirectory: Sendable {
    /// The store of `shard`; throws when the shard is not registered here.
    func shardStore(_ shard: ShardID) throws -> any ShardStore
    /// Every table, in name order (tables created during a migration included).
    var tableNames: [TableName] { get }
}

/// What a migrator asks of the routers: hold writes, show a canary, switch maps, and what their
/// foreground and shadow reads look like. Production routers follow through the metadata store's
/// directive; a simulation answers with its own.
public protocol RouterControl: Sendable {
    /// Changes the directive every router follows, and puts it in force in this process at once.
    func publishDirective(_ change: (inout RouterDirective) -> Void) async throws
    /// Lets this process's held writes go now (before the directive is saved: held writes must go
    /// even when the metadata cannot be written).
    func releaseHeldWrites()
    /// The write-pause figures of writes held since the last call.
    func takeWritePauses() -> PauseSummary
    /// Puts `map`, just published, in force here without a re-read.
    func adopt(_ map: ShardMap) -> Bool
    /// Puts `table`, a layout just published, in force here without a re-read.
    func adoptLayout(_ table: TableDefinition) -> Bool
    /// Re-reads the current map.
    func refreshShardMap() async throws -> Bool
    /// The routers' recent foreground p99, microseconds (the throttle's signal).
    var foregroundP99Micros: UInt64? { get }
    /// Every router's shadow reads for `migration` (this process's first), by router name.
    func shadowReads(migration: String) async throws -> [(router: String, stats: ShadowReads.Stats)]
    /// Every router's reads served by the new owners alone for `migration` (this process's
    /// first), by router name.
    func servedReads(migration: String) async throws -> [(router: String, stats: ServedReads.Stats)]
}

extension ShardRouter: StoreDirectory {
    /// The store of a registered shard.
    public func shardStore(_ shard: ShardID) throws -> any ShardStore {
        guard let store = snapshot.shards[shard]?.store else {
            throw RouterError.shardUnavailable(shard.rawValue, "not registered on this router")
        }
        return store
    }

    /// Every table's storage on the shards (its rows, and its primary-key lookup if it has one),
    /// in order: what a range migration copies, compares and cleans up.
    public var tableNames: [TableName] { tables.flatMap(\.storages) }
}
