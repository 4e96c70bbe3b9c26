import Foundation
import ReshardCore
import ReshardStore

/// Runs one unit of migration work against the real stores and reports what happened as an
/// event. It holds no state of its own: the state machine decides, the worker does.
struct MigrationWorker: Sendable {
    let router: ShardRouter
    let metadata: any MetadataStore
    /// Changes read per changelog batch.
    let tailBatch: Int

    func store(_ shard: ShardID) throws -> any ShardStore {
        guard let store = router.store(shard) else {
            throw RouterError.shardUnavailable(shard.rawValue, "not registered on this router")
        }
        return store
    }

    func perform(_ work: MigrationWork, machine: MigrationStateMachine, now: UInt64) async throws -> MigrationEvent {
        switch work {
        case .prepare(let sources, let targets):
            for target in targets {
                for table in router.tables.map(\.name) { try await store(target).ensureTable(table) }
            }
            // Every shard taking part gets the migration's change stream before anything is
            // copied: sources for forward replication, targets for reverse replication after the
            // switch (a PostgreSQL slot must exist before the changes it is to deliver).
            let stream = streamID(machine)
            var positions: [ShardID: UInt64] = [:]
            for shard in Set(sources).union(targets) {
                let start = try await store(shard).openChangeStream(stream)
                if sources.contains(shard) { positions[shard] = start }
            }
            return .prepared(positions: positions)
        case .copyChunk(let task, let move, let table, let after, let limit):
            return try await Backfill(source: store(move.source), target: store(move.target))
                .copyChunk(task: task, table: table, range: move.range, after: after, limit: limit)
        case .tail(let direction, let shard, let after):
            // A drain stops at the position read at the fence and needs no lag figures.
            let drainTo = machine.cutover?.step == .drain ? machine.cutover?.drainTo[shard] : nil
            return try await changeApplier(machine).tail(direction, shard: shard, after: after, through: drainTo, now: now)
        case .verify:
            return try await Verifier(worker: self).verify(machine, now: now)
        case .holdWrites(let ranges):
            // Every router holds: this one at once, the others when the directive reaches them
            // (one that misses it is refused by the fence instead).
            try await router.publishDirective { $0.hold = RouterDirective.Hold(ranges: ranges, generation: machine.plan.target.generation) }
            return .writesHeld
        case .fence(let byShard, let generation, let readPositions):
            // Writes are held while this runs: every shard at once, one transaction each, and the
            // fenced shards' positions come from their fence transactions.
            var work = byShard
            for shard in readPositions where work[shard] == nil { work[shard] = [] }
            let stores = try work.map { (shard: $0.key, store: try store($0.key), ranges: $0.value) }
            let positions = try await withThrowingTaskGroup(of: (ShardID, UInt64).self) { group in
                for (shard, store, ranges) in stores {
                    group.addTask {
                        (shard, ranges.isEmpty ? try await store.changePosition() : try await store.fence(ranges, generation: generation))
                    }
                }
                var positions: [ShardID: UInt64] = [:]
                for try await (shard, position) in group { positions[shard] = position }
                return positions
            }
            return .fenced(positions: positions)
        case .publish(let map):
            try await publish(map)
            return .published
        case .releaseWrites:
            // Here first: held writes must go even when the metadata cannot be written.
            router.gate.release()
            try await router.publishDirective { $0.hold = nil }
            return .writesReleased
        case .removeFences(let byShard):
            try await forEachShard(byShard) { store, ranges in try await store.removeFences(ranges) }
            return .fencesRemoved
        case .deleteChunk(let task, let shard, let range, let limit):
            let deleted = try await store(shard).deleteRange(range, limit: limit)
            return .chunkDeleted(task: task, rows: deleted, done: deleted < limit)
        case .purgeTombstones(let task, let shard, let before, let limit):
            let purged = try await store(shard).purgeTombstones(before: before, limit: limit)
            return .tombstonesPurged(task: task, rows: purged, done: purged < limit)
        case .checkShadowReads:
            // The runner performs this one: it keeps which mismatches it has already acted on.
            preconditionFailure("checkShadowReads is performed by the migration runner")
        case .waitUntil(let deadline):
            if deadline > now { try await Task.sleep(for: .milliseconds(min(deadline - now, 200))) }
            return .tick
        case .closeStreams:
            let problems = await closeStreams(machine)
            guard problems.isEmpty else {
                throw StoreError.backend("could not close every change stream: \(problems.joined(separator: "; "))")
            }
            return .streamsClosed
        case .finish:
            // The consumed changelog entries are no longer needed by this migration.
            for (shard, stream) in machine.forward { try await store(shard).purgeChanges(through: stream.position) }
            return .finished
        }
    }

    /// Runs `body` on every shard's store concurrently; the first error wins.
    private func forEachShard(
        _ byShard: [ShardID: [HashRange]], _ body: @escaping @Sendable (any ShardStore, [HashRange]) async throws -> Void
    ) async throws {
        let stores = try byShard.map { (try store($0.key), $0.value) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (store, ranges) in stores { group.addTask { try await body(store, ranges) } }
            try await group.waitForAll()
        }
    }

    func changeApplier(_ machine: MigrationStateMachine) throws -> ChangeApplier {
        ChangeApplier(plan: machine.plan, stream: streamID(machine), batch: tailBatch, store: { try self.store($0) })
    }

    /// The migration's change stream name.
    func streamID(_ machine: MigrationStateMachine) -> ChangeStreamID { ChangeStreamID(migration: machine.id) }

    /// Closes the migration's change streams on every shard of its plan (the migration ended:
    /// a PostgreSQL slot left open would keep WAL forever). Unreachable shards are skipped and
    /// reported; the startup sweep closes what is left.
    func closeStreams(_ machine: MigrationStateMachine) async -> [String] {
        let stream = streamID(machine)
        var problems: [String] = []
        for shard in Set(machine.plan.sources).union(machine.plan.targets).sorted() {
            do {
                try await store(shard).closeChangeStream(stream)
            } catch {
                problems.append("\(shard): \(error)")
            }
        }
        return problems
    }

    /// Publishes `map`, counting "already published" as done: after a crash the machine may not
    /// know that its publish went through.
    private func publish(_ map: ShardMap) async throws {
        do {
            try await metadata.publish(map, replacing: map.generation - 1)
        } catch let error as MetadataError where error.isConflict {
            guard try await metadata.shardMap(generation: map.generation) == map else { throw error }
            try await router.refreshShardMap()
        }
        router.adopt(map)
    }
}
