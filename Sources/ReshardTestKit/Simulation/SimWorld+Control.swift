import ReshardCore
import ReshardEngine
import ReshardStore

/// The world as the production migrator sees it: a store directory over the in-memory shards,
/// and routers that follow its directive (router 0 at once, router 1 when it hears notices).
extension SimWorld: StoreDirectory, RouterControl {
    public func shardStore(_ shard: ShardID) throws -> any ShardStore {
        guard let store = stores[shard] else { throw StoreError.backend("no shard \(shard) in the simulation") }
        return store
    }

    public var tableNames: [TableName] { tables }

    public func publishDirective(_ change: (inout RouterDirective) -> Void) async throws {
        if crashed { throw Crash() }
        state.withLock { state in
            change(&state.directive)
            for index in state.routers.indices where index == 0 || state.routers[index].hearsNotices { follow(index, &state) }
        }
    }

    public func releaseHeldWrites() {
        if crashed { return }
        state.withLock { release(0, &$0) }
    }

    public func takeWritePauses() -> PauseSummary { PauseSummary(count: 0, p50Millis: 0, p99Millis: 0, maxMillis: 0) }

    public func adopt(_ map: ShardMap) -> Bool {
        if crashed { return false }
        return state.withLock { state in
            guard map.generation > state.routers[0].map.generation else { return false }
            state.routers[0].map = map
            return true
        }
    }

    /// The simulation's routers route by the map alone (its scenarios move ranges, not table
    /// layouts), so there is never a layout to adopt.
    public func adoptLayout(_ table: TableDefinition) -> Bool { false }

    public func refreshShardMap() async throws -> Bool {
        if crashed { throw Crash() }
        guard let current = metadata.current else { return false }
        return adopt(current)
    }

    /// A foreground p99 that wanders, so the throttle's every path is taken.
    public var foregroundP99Micros: UInt64? {
        state.withLock { state in
            switch state.random.next() % 10 {
            case 0: state.p99Micros = 1_000 + state.random.next() % 20_000
            case 1: state.p99Micros = 1_000
            default: break
            }
            return state.p99Micros
        }
    }

    public func shadowReads(migration: String) async throws -> [(router: String, stats: ShadowReads.Stats)] {
        if crashed { throw Crash() }
        return state.withLock { state in
            var stats = state.shadow
            stats.migration = migration
            return [("sim", stats)]
        }
    }

    public func servedReads(migration: String) async throws -> [(router: String, stats: ServedReads.Stats)] {
        if crashed { throw Crash() }
        return state.withLock { state in
            var stats = state.served
            stats.migration = migration
            return [("sim", stats)]
        }
    }
}
