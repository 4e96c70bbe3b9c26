import ReshardCore
import Synchronization

/// A change that caches must hear about.
public struct MetadataEvent: Sendable, Hashable, Codable {
    /// What changed.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A shard map was published (`MetadataStore.publish`).
        case shardMap = "shard_map"
        /// A table's layout was switched (`MetadataStore.publishLayout`).
        case layout
        /// A migration's leftovers were cleaned up (`MetadataStore.recordEvent`).
        case cleanup
    }

    /// What changed.
    public var kind: Kind
    /// shard_map: the new map's generation; layout: the table's new layout generation;
    /// cleanup: whatever generation the caller names (the map or layout generation cleaned up after).
    public var generation: UInt64
    /// The generation replaced (nil for the first map, or when the caller has none).
    public var previousGeneration: UInt64?
    /// layout / cleanup of one table; nil for a shard map (it covers every table).
    public var table: TableName?
    /// The hash ranges whose owner changed (`previous.diff(to: new)`); empty for the first map and for layout events.
    public var moves: [Move]
    /// The migration behind it, when known (cleanup events).
    public var migration: String?

    /// An event.
    public init(
        kind: Kind, generation: UInt64, previousGeneration: UInt64? = nil, table: TableName? = nil, moves: [Move] = [],
        migration: String? = nil
    ) {
        self.kind = kind
        self.generation = generation
        self.previousGeneration = previousGeneration
        self.table = table
        self.moves = moves
        self.migration = migration
    }
}

/// An event as stored: its position in the cluster's event log (1, 2, …, never reused) and when
/// it was stored (ms since 1970, store clock).
public struct StoredEvent: Sendable, Hashable {
    /// Where it is in the log: positions follow commit order and are never reused, even after a trim.
    public let position: UInt64
    /// When it was stored, milliseconds since 1970, by the metadata store's clock (not
    /// necessarily increasing with `position`: a clock can step back).
    public let atMillis: UInt64
    /// What happened.
    public let event: MetadataEvent

    /// A stored event.
    public init(position: UInt64, atMillis: UInt64, event: MetadataEvent) {
        self.position = position
        self.atMillis = atMillis
        self.event = event
    }
}

extension MetadataEvent {
    /// The newest events kept; older ones are trimmed in the transaction that appends, so the log
    /// stays bounded. A reader whose position is before the oldest kept must start over (the
    /// caller decides what that means).
    public static let retained = 10_000

    /// Most events one read returns.
    public static let readLimits = 1...1_000

    /// `limit` brought into `readLimits`, so that every store pages alike.
    public static func clampedReadLimit(_ limit: Int) -> Int {
        min(max(limit, readLimits.lowerBound), readLimits.upperBound)
    }

    /// The shard map event of publishing `map` over `previous` (nil: the first map).
    package static func published(_ map: ShardMap, replacing previous: ShardMap?) -> MetadataEvent {
        MetadataEvent(
            kind: .shardMap, generation: map.generation, previousGeneration: previous?.generation,
            moves: previous?.diff(to: map) ?? [])
    }

    /// The layout event of switching `table` from layout generation `previous`.
    package static func switched(_ table: TableDefinition, from previous: UInt64) -> MetadataEvent {
        MetadataEvent(kind: .layout, generation: table.layoutGeneration, previousGeneration: previous, table: table.name)
    }
}

/// What the SQL stores keep of the event log: a head with the last position ever appended, and
/// the events themselves with signed 64-bit positions and times, checked as they are read back.
enum StoredEvents {
    /// `(first, last)` as `MetadataStore.eventBounds` answers it, from the head's last position
    /// and the oldest position kept.
    static func bounds(last: Int64, first: Int64?) throws -> (first: UInt64, last: UInt64) {
        guard last >= 0 else { throw MetadataError.corrupt("the event log's last position is \(last)") }
        guard let first else {
            // Never appended; or emptied behind the store's back (a trim always keeps the newest),
            // when the oldest a reader can resume from is the next one.
            return last == 0 ? (0, 0) : (UInt64(last) + 1, UInt64(last))
        }
        guard first >= 1, first <= last else {
            throw MetadataError.corrupt("the event log holds position \(first) but its last position is \(last)")
        }
        return (UInt64(first), UInt64(last))
    }

    /// The position after `last`, as stored.
    static func next(after last: Int64) throws -> Int64 {
        guard last >= 0 else { throw MetadataError.corrupt("the event log's last position is \(last)") }
        let (next, overflow) = last.addingReportingOverflow(1)
        if overflow { throw MetadataError.corrupt("the event log is past position 2^63") }
        return next
    }

    /// An event as read back; a row no store wrote is corrupt, never a trap.
    static func decode(position: Int64, atMillis: Int64, body: String) throws -> StoredEvent {
        guard position >= 1 else { throw MetadataError.corrupt("an event at position \(position)") }
        guard atMillis >= 0 else { throw MetadataError.corrupt("the event at position \(position) was stored at \(atMillis) ms") }
        let event = try MetadataJSON.decode(MetadataEvent.self, body)
        return StoredEvent(position: UInt64(position), atMillis: UInt64(atMillis), event: event)
    }
}
