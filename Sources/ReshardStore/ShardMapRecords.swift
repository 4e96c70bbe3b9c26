import Foundation
import ReshardCore
import Synchronization

/// How the metadata stores keep published maps. A generation is kept as its whole text, as the
/// moves from the generation it replaced, or both: a cutover publishes inside its write hold,
/// where the whole text of a 1,000-shard ring (5.5 MB) costs 70–200 ms to write and the moves
/// of one added shard (256 ranges) a few kilobytes. After the hold, `snapshotShardMaps` writes
/// the whole text too, so that a reader without the replaced map does not replay a chain.
enum ShardMapRecords {
    /// Most generations kept as moves alone after the newest whole text: a publish past it
    /// writes the whole text inside its transaction, so a chain stays short even when no
    /// snapshot is ever taken.
    static let longestChain = 16

    /// Maps of at most this many ranges (about 45 KB of text) are kept whole by every publish:
    /// writing them costs no more than the moves, and no snapshot is then needed after the hold.
    static let wholeTextRanges = 2_048

    /// The moves a publish keeps `map` as, when it keeps them: only for a large map with a
    /// replaced map to diff against, and a chain not yet at its bound.
    static func keptMoves(_ map: ShardMap, _ prepared: Prepared, chain: Int) -> String? {
        chain < longestChain && map.assignments.count > wholeTextRanges ? prepared.moves : nil
    }

    /// A generation kept as moves: `moves` (JSON) turn generation `base` into it.
    struct Change: Sendable {
        let generation: UInt64
        let base: UInt64
        let moves: String

        init(generation: Int64, base: Int64, moves: String) {
            self.generation = UInt64(bitPattern: generation)
            self.base = UInt64(bitPattern: base)
            self.moves = moves
        }
    }

    /// `start` with `changes` applied in order (each must be based on the map before it);
    /// a chain that does not hold together is corrupt metadata.
    static func replay(from start: ShardMap, _ changes: [Change]) throws -> ShardMap {
        var map = start
        for change in changes {
            guard change.base == map.generation, change.generation > change.base else {
                throw MetadataError.corrupt(
                    "shard map generation \(change.generation) is kept as moves from \(change.base), but the map before it is \(map.generation)"
                )
            }
            let moves = try MetadataJSON.decode([Move].self, change.moves)
            do {
                map = try map.applying(moves, generation: change.generation)
            } catch {
                throw MetadataError.corrupt("shard map generation \(change.generation): \(error)")
            }
        }
        return map
    }

    /// What a publish writes, prepared before its transaction when the replaced map is at hand.
    struct Prepared: Sendable {
        /// The event body.
        let event: String
        /// The moves from the replaced map, JSON; nil for the first map.
        let moves: String?
    }

    static func prepare(_ new: ShardMap, replacing previous: ShardMap?) throws -> Prepared {
        let event = MetadataEvent.published(new, replacing: previous)
        let moves = StoredMoves.encode(event.moves)
        return Prepared(event: try StoredMoves.encode(event, moves: moves), moves: previous.map { _ in moves })
    }
}

/// The newest shard map a store handle published or read. A published map never changes, so
/// what publishing over generation G writes (the event, the moves) can be prepared from the
/// remembered map of G before the publishing transaction, instead of reading and decoding the
/// replaced map inside it, where a cutover holds writes; and a newer generation kept as moves
/// from the remembered one is read as those moves alone.
package final class RememberedMap: Sendable {
    private let map = Mutex<ShardMap?>(nil)

    package init() {}

    /// Keeps `map` if it is newer than the one kept.
    package func remember(_ newer: ShardMap?) {
        guard let newer else { return }
        map.withLock { kept in
            if (kept?.generation ?? 0) < newer.generation { kept = newer }
        }
    }

    /// The kept map, if any.
    package var kept: ShardMap? { map.withLock { $0 } }

    /// The newest generation this handle kept as moves alone and has not snapshotted since.
    private let movesOnly = Mutex<UInt64?>(nil)

    /// Notes that this handle kept `generation` as its moves.
    func keptAsMoves(_ generation: UInt64) { movesOnly.withLock { $0 = max($0 ?? 0, generation) } }

    /// Whether a snapshot is due from this handle.
    var snapshotDue: Bool { movesOnly.withLock { $0 != nil } }

    /// Notes a snapshot through `generation`: a failed one leaves the note for the next call.
    func snapshotted(through generation: UInt64) {
        movesOnly.withLock { if let due = $0, due <= generation { $0 = nil } }
    }

    /// What publishing `new` over generation `expected` writes, when the map it replaces is at
    /// hand (or there is none); nil otherwise, and the store reads the replaced map itself.
    func prepared(_ new: ShardMap, replacing expected: UInt64?) throws -> ShardMapRecords.Prepared? {
        guard let expected else { return try ShardMapRecords.prepare(new, replacing: nil) }
        guard let previous = kept, previous.generation == expected else { return nil }
        return try ShardMapRecords.prepare(new, replacing: previous)
    }
}

/// The reads `ShardMapRecords.map` makes of a backend's two tables (whole texts, changes).
protocol ShardMapRows {
    /// The change kept for `generation`, if any.
    func change(_ generation: UInt64) async throws -> ShardMapRecords.Change?
    /// The whole text kept for `generation`, if any.
    func text(_ generation: UInt64) async throws -> String?
    /// The newest generation below `generation` kept as a whole text.
    func newestText(below generation: UInt64) async throws -> UInt64?
    /// The changes of the generations in `(after, through]`, in order.
    func changes(after: UInt64, through: UInt64) async throws -> [ShardMapRecords.Change]
}

extension ShardMapRecords {
    /// The map of `generation`; nil when it was never published. `known` (a map this handle
    /// holds) is used when `generation` is kept as moves from it: the read is then the moves.
    static func map(_ generation: UInt64, known: ShardMap?, rows: some ShardMapRows) async throws -> ShardMap? {
        if let known, known.generation == generation { return known }
        let change = try await rows.change(generation)
        if let change, let known, change.base == known.generation { return try replay(from: known, [change]) }
        if let text = try await rows.text(generation) { return try StoredShardMap.decode(text) }
        // Kept as moves from a map that is not at hand: replay the chain from the newest whole
        // text before it, or from the known map when that is newer (and so in the chain).
        let whole = try await rows.newestText(below: generation)
        let start: ShardMap
        if let known, known.generation < generation, known.generation >= (whole ?? 0) {
            start = known
        } else if let whole, let text = try await rows.text(whole) {
            start = try StoredShardMap.decode(text)
        } else {
            guard change == nil else {
                throw MetadataError.corrupt("shard map generation \(generation) is kept as moves, with no whole map before it")
            }
            return nil
        }
        let changes = try await rows.changes(after: start.generation, through: generation)
        guard changes.last?.generation == generation else { return nil }
        return try replay(from: start, changes)
    }
}

extension MetadataStore {
    /// What publishing `map` over generation `expected` writes: prepared from the map this
    /// handle remembers, or from the replaced map read before the transaction (a published map
    /// never changes). A replaced generation that is not there is a conflict, as the publish's
    /// own check would find.
    func preparedPublish(_ map: ShardMap, replacing expected: UInt64?, remembered: RememberedMap) async throws
        -> ShardMapRecords.Prepared
    {
        if let prepared = try remembered.prepared(map, replacing: expected) { return prepared }
        guard let expected else { return try ShardMapRecords.prepare(map, replacing: nil) }
        guard let previous = try await shardMap(generation: expected) else {
            throw MetadataError.generationConflict(expected: expected, found: nil)
        }
        return try ShardMapRecords.prepare(map, replacing: previous)
    }
}
