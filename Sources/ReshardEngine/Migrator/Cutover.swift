import ReshardCore
import ReshardStore
import Synchronization

/// The cutover protocol's steps as I/O (DESIGN.md, "Cutover"): hold, fence, publish, release,
/// and taking fences off an aborted attempt. The drain between fence and publish is the change
/// applier's. The order and the deadlines are the state machine's; a step only acts.
protocol CutoverSteps: Sendable {
    /// Every router holds writes to `ranges` until `generation` is in force.
    func hold(_ ranges: [HashRange], generation: UInt64) async throws
    /// Fences the ranges on their shards at `generation` and reads the positions of `readPositions`.
    func fence(_ byShard: [ShardID: [HashRange]], generation: UInt64, readPositions: [ShardID]) async throws -> [ShardID: UInt64]
    /// Makes `map` current (already current counts as done).
    func publish(_ map: ShardMap) async throws
    /// Lets held writes go.
    func release() async throws
    /// Takes fences off.
    func removeFences(_ byShard: [ShardID: [HashRange]]) async throws
    /// Every router holds writes to `table` until its layout generation `layout` is in force.
    func holdTable(_ table: TableName, layout: UInt64) async throws
    /// Retires `tables` on each of `shards` for layout `layout`; each shard's position read in
    /// the same transaction.
    func retire(_ tables: [TableName], layout: UInt64, shards: [ShardID]) async throws -> [ShardID: UInt64]
    /// Takes the retirement off `tables` on `shards`.
    func unretire(_ tables: [TableName], shards: [ShardID]) async throws
    /// Makes `table` the table's layout (already in force counts as done).
    func publishLayout(_ table: TableDefinition, replacing: UInt64) async throws
}

/// The live cutover, against the routers, the shards and the metadata store.
struct Cutover: CutoverSteps {
    let routers: any RouterControl
    let stores: any StoreDirectory
    let metadata: any MetadataStore
    /// Whether shards are fenced side by side (production) or one by one in shard order (a
    /// deterministic simulation).
    var concurrent = true

    func hold(_ ranges: [HashRange], generation: UInt64) async throws {
        // Every router holds: this one at once, the others when the directive reaches them (one
        // that misses it is refused by the fence instead).
        try await routers.publishDirective { $0.hold = RouterDirective.Hold(ranges: ranges, generation: generation) }
    }

    func fence(_ byShard: [ShardID: [HashRange]], generation: UInt64, readPositions: [ShardID]) async throws -> [ShardID: UInt64] {
        // Writes are held while this runs: every shard at once, one transaction each, and the
        // fenced shards' positions come from their fence transactions.
        var work = byShard
        for shard in readPositions where work[shard] == nil { work[shard] = [] }
        let stores = try work.sorted { $0.key < $1.key }.map {
            (shard: $0.key, store: try self.stores.shardStore($0.key), ranges: $0.value)
        }
        guard concurrent else {
            var positions: [ShardID: UInt64] = [:]
            for (shard, store, ranges) in stores {
                positions[shard] = ranges.isEmpty ? try await store.changePosition() : try await store.fence(ranges, generation: generation)
            }
            return positions
        }
        return try await withThrowingTaskGroup(of: (ShardID, UInt64).self) { group in
            for (shard, store, ranges) in stores {
                group.addTask {
                    (shard, ranges.isEmpty ? try await store.changePosition() : try await store.fence(ranges, generation: generation))
                }
            }
            var positions: [ShardID: UInt64] = [:]
            for try await (shard, position) in group { positions[shard] = position }
            return positions
        }
    }

    func publish(_ map: ShardMap) async throws {
        do {
            try await metadata.publish(map, replacing: map.generation - 1)
        } catch let error as MetadataError where error.isConflict {
            // After a crash the machine may not know that its publish went through.
            guard try await metadata.shardMap(generation: map.generation) == map else { throw error }
            _ = try await routers.refreshShardMap()
        }
        _ = routers.adopt(map)
    }

    func release() async throws {
        // Here first: held writes must go even when the metadata cannot be written.
        routers.releaseHeldWrites()
        try await routers.publishDirective { $0.hold = nil }
        // The publish inside the hold kept the new map as its moves; its whole text is written
        // now that writes flow. Losing this write loses nothing: the moves are a full record,
        // and the next release (or publish, past `ShardMapRecords.longestChain`) writes it.
        try? await metadata.snapshotShardMaps()
    }

    func holdTable(_ table: TableName, layout: UInt64) async throws {
        try await routers.publishDirective { $0.hold = RouterDirective.Hold(table: table, layout: layout) }
    }

    func retire(_ tables: [TableName], layout: UInt64, shards: [ShardID]) async throws -> [ShardID: UInt64] {
        let stores = try shards.sorted().map { (shard: $0, store: try self.stores.shardStore($0)) }
        guard concurrent else {
            var positions: [ShardID: UInt64] = [:]
            for (shard, store) in stores { positions[shard] = try await store.retire(tables, layout: layout) }
            return positions
        }
        return try await withThrowingTaskGroup(of: (ShardID, UInt64).self) { group in
            for (shard, store) in stores { group.addTask { (shard, try await store.retire(tables, layout: layout)) } }
            var positions: [ShardID: UInt64] = [:]
            for try await (shard, position) in group { positions[shard] = position }
            return positions
        }
    }

    func unretire(_ tables: [TableName], shards: [ShardID]) async throws {
        for shard in shards.sorted() { try await stores.shardStore(shard).unretire(tables) }
    }

    func publishLayout(_ table: TableDefinition, replacing: UInt64) async throws {
        // Publishing what is already stored is harmless: after a crash the machine may not know
        // that its publish went through.
        try await metadata.publishLayout(table, replacing: replacing)
        _ = routers.adoptLayout(table)
    }

    func removeFences(_ byShard: [ShardID: [HashRange]]) async throws {
        let stores = try byShard.sorted { $0.key < $1.key }.map { (try self.stores.shardStore($0.key), $0.value) }
        guard concurrent else {
            for (store, ranges) in stores { try await store.removeFences(ranges) }
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (store, ranges) in stores { group.addTask { try await store.removeFences(ranges) } }
            try await group.waitForAll()
        }
    }
}

/// The cutover's twin that changes nothing and reports what the live one would do, one sorted
/// line per action (as Vitess's switcher dry run does): for an operator before a cutover, and for
/// tests that pin the protocol's order. Positions are read, never fenced.
final class CutoverDryRun: CutoverSteps {
    private let stores: any StoreDirectory
    private let lines = Mutex<[String]>([])

    init(stores: any StoreDirectory) {
        self.stores = stores
    }

    /// What the steps so far would have done, in order.
    var report: [String] { lines.withLock { $0 } }

    private func say(_ line: String) { lines.withLock { $0.append(line) } }

    private static func describe(_ ranges: [HashRange]) -> String { ranges.sorted().map { "\($0)" }.joined(separator: ", ") }

    func hold(_ ranges: [HashRange], generation: UInt64) async throws {
        say("hold writes to \(ranges.count) range(s) in every router until generation \(generation): \(Self.describe(ranges))")
    }

    func fence(_ byShard: [ShardID: [HashRange]], generation: UInt64, readPositions: [ShardID]) async throws -> [ShardID: UInt64] {
        var positions: [ShardID: UInt64] = [:]
        for shard in Set(readPositions).union(byShard.keys).sorted() {
            let position = try await stores.shardStore(shard).changePosition()
            positions[shard] = position
            if let ranges = byShard[shard] {
                say("fence \(shard) at generation \(generation): \(Self.describe(ranges)) (changelog at \(position))")
            } else {
                say("read the changelog position of \(shard) (\(position))")
            }
        }
        return positions
    }

    func publish(_ map: ShardMap) async throws {
        say("publish shard map generation \(map.generation) over \(map.shards.count) shard(s)")
    }

    func release() async throws {
        say("release held writes to the owners of the current map")
    }

    func removeFences(_ byShard: [ShardID: [HashRange]]) async throws {
        for (shard, ranges) in byShard.sorted(by: { $0.key < $1.key }) {
            say("remove fences of \(shard): \(Self.describe(ranges))")
        }
    }

    func holdTable(_ table: TableName, layout: UInt64) async throws {
        say("hold writes to table \(table) in every router until layout generation \(layout)")
    }

    func retire(_ tables: [TableName], layout: UInt64, shards: [ShardID]) async throws -> [ShardID: UInt64] {
        var positions: [ShardID: UInt64] = [:]
        for shard in shards.sorted() {
            let position = try await stores.shardStore(shard).changePosition()
            positions[shard] = position
            say("retire \(tables.map(\.rawValue).joined(separator: ", ")) on \(shard) for layout \(layout) (changelog at \(position))")
        }
        return positions
    }

    func unretire(_ tables: [TableName], shards: [ShardID]) async throws {
        say("take the retirement of \(tables.map(\.rawValue).joined(separator: ", ")) off \(shards.count) shard(s)")
    }

    func publishLayout(_ table: TableDefinition, replacing: UInt64) async throws {
        say("publish layout generation \(table.layoutGeneration) of \(table.name): placed by \(table.shardKey), stored in \(table.storage)")
    }
}
