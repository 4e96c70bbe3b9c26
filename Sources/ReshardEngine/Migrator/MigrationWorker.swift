import ReshardCore
import ReshardStore

/// Runs work items: one exhaustive switch from each item to the role that does its I/O. It
/// holds the migration's fixed identity (id, plan) and its dependencies, never the machine:
/// every item carries what changes.
struct MigrationWorker: Sendable {
    let changes: ChangeApplier
    let verifier: Verifier
    let cutover: any CutoverSteps
    let cleanup: Cleanup
    let canary: CanaryReads
    let retries: SecondWriteQueue
    let replays: Replay
    let metadata: any MetadataStore
    let stream: ChangeStreamID
    let stores: any StoreDirectory
    let plan: MigrationPlan

    /// The roles of migration `id` over `plan`.
    init(
        id: String, plan: MigrationPlan, stores: any StoreDirectory, routers: any RouterControl, metadata: any MetadataStore,
        tailBatch: Int, concurrent: Bool = true, cutover: (any CutoverSteps)? = nil
    ) {
        self.stores = stores
        self.plan = plan
        changes = ChangeApplier(plan: plan, stream: ChangeStreamID(migration: id), batch: tailBatch, stores: stores)
        verifier = Verifier(plan: plan, stores: stores, applier: changes)
        self.cutover = cutover ?? Cutover(routers: routers, stores: stores, metadata: metadata, concurrent: concurrent)
        cleanup = Cleanup(stores: stores)
        canary = CanaryReads(migration: id, routers: routers)
        stream = ChangeStreamID(migration: id)
        retries = SecondWriteQueue(log: MigrationLogID(migration: stream, kind: .retry), metadata: metadata, stores: stores)
        replays = Replay(plan: plan, log: MigrationLogID(migration: stream, kind: .replay), metadata: metadata, stores: stores)
        self.metadata = metadata
    }

    /// Runs `work` at wall time `now`; its result as an event (a failure as `.stepFailed`).
    func perform(_ work: MigrationWork, now: UInt64, sleep: @Sendable (UInt64) async throws -> Void) async -> MigrationEvent {
        do {
            return try await run(work, now: now, sleep: sleep)
        } catch {
            return .stepFailed("\(error)")
        }
    }

    private func run(_ work: MigrationWork, now: UInt64, sleep: @Sendable (UInt64) async throws -> Void) async throws -> MigrationEvent {
        switch work {
        case .prepare(let sources, let targets):
            // The logs routers append to (second writes to retry, writes to replay) take appends
            // from here until the migration ends.
            try await metadata.openLogs(of: stream)
            return try await changes.prepare(sources: sources, targets: targets)
        case .copyChunk(let task, let move, let table, let after, let limit):
            if let relayout = plan.relayout {
                // Rows of the old layout, placed again in the new one by its shard key. The task
                // scans a slice of the whole hash space: only the rows its shard owns are its.
                let rows = try await stores.shardStore(move.source).scan(table: table, range: move.range, after: after, limit: limit)
                let owned = rows.filter { plan.source.owner(of: $0.hash) == move.source }
                try await LayoutWriter(layout: relayout.to, map: plan.source, stores: stores)
                    .apply(RowImage.images(owned, in: relayout.from))
                let last = rows.last.map { ScanCursor(hash: $0.hash, pk: $0.pk) } ?? after
                return .chunkCopied(
                    task: task, last: last, rows: rows.count, done: rows.count < limit, bytes: rows.reduce(0) { $0 + $1.payloadBytes })
            }
            return try await Backfill(source: stores.shardStore(move.source), target: stores.shardStore(move.target))
                .copyChunk(task: task, table: table, range: move.range, after: after, limit: limit)
        case .tail(let direction, let shard, let after, let through):
            return try await changes.tail(direction, shard: shard, after: after, through: through, now: now)
        case .verify(let request):
            return try await verifier.verify(request, now: now)
        case .holdWrites(let ranges, let generation):
            try await cutover.hold(ranges, generation: generation)
            return .writesHeld
        case .fence(let byShard, let generation, let readPositions):
            return .fenced(positions: try await cutover.fence(byShard, generation: generation, readPositions: readPositions))
        case .publish(let map):
            try await cutover.publish(map)
            return .published
        case .releaseWrites:
            try await cutover.release()
            return .writesReleased
        case .removeFences(let byShard):
            try await cutover.removeFences(byShard)
            return .fencesRemoved
        case .deleteChunk(let task, let shard, let range, let limit):
            return try await cleanup.deleteChunk(task: task, shard: shard, range: range, limit: limit)
        case .clearTable(let task, let shard, let table, let limit):
            return try await cleanup.clearTable(task: task, shard: shard, table: table, limit: limit)
        case .holdTable(let table, let layout):
            try await cutover.holdTable(table, layout: layout)
            return .writesHeld
        case .retire(let tables, let layout, let shards):
            return .fenced(positions: try await cutover.retire(tables, layout: layout, shards: shards))
        case .unretire(let tables, let shards):
            try await cutover.unretire(tables, shards: shards)
            return .fencesRemoved
        case .publishLayout(let table, let replacing):
            try await cutover.publishLayout(table, replacing: replacing)
            return .published
        case .purgeTombstones(let task, let shard, let before, let limit):
            return try await cleanup.purgeTombstones(task: task, shard: shard, before: before, limit: limit)
        case .checkShadowReads(let since, let upTo):
            return try await canary.check(since: since, upTo: upTo)
        case .showRoutes(let directive):
            return try await canary.show(directive)
        case .waitUntil(let deadline):
            // At most a fifth of a second, so operator commands are not kept waiting.
            if deadline > now { try await sleep(min(deadline - now, 200)) }
            return .tick
        case .closeStreams:
            let problems = await changes.closeStreams()
            guard problems.isEmpty else {
                throw StoreError.backend("could not close every change stream: \(problems.joined(separator: "; "))")
            }
            try await metadata.dropLogs(of: stream)
            return .streamsClosed
        case .replay(let after, let limit):
            return try await replays.replay(after: after, limit: limit)
        case .retrySecondWrites(let limit):
            return await retries.retry(limit: limit)
        case .finish(let positions):
            return try await cleanup.finish(purgeThrough: positions)
        }
    }
}
