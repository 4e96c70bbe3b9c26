import ReshardCore
import ReshardStore

/// The cluster's event log (published maps, layout switches, cleanups) as applications follow
/// it: read from the metadata store, which appends a map's event in the transaction that
/// publishes it, so every router serves the same positions in the same order.
public struct ClusterEvents: Sendable {
    let metadata: any MetadataStore

    /// Up to `limit` events after `position`, oldest first.
    public func read(after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        try await metadata.events(after: position, limit: limit)
    }

    /// The oldest position kept and the last appended ((0, 0) before the first).
    public func bounds() async throws -> (first: UInt64, last: UInt64) {
        try await metadata.eventBounds()
    }

    /// The metadata's change notifications (an append announces `.events`); a hint to read
    /// again, not a guarantee: a follower also re-reads on a timer.
    public func changes() -> AsyncStream<MetadataChange> { metadata.watch() }

    /// Records a migration's cleanup.
    func recordCleanup(migration: String, plan: MigrationPlan) async throws {
        let layout = plan.relayout
        _ = try await metadata.recordEvent(
            MetadataEvent(
                kind: .cleanup, generation: layout?.to.layoutGeneration ?? plan.target.generation,
                previousGeneration: layout?.from.layoutGeneration ?? plan.source.generation, table: layout?.from.name,
                moves: layout == nil ? plan.moves : [], migration: migration))
    }
}

extension ShardRouter {
    /// The cluster's event log.
    public var events: ClusterEvents { ClusterEvents(metadata: metadata) }
}
