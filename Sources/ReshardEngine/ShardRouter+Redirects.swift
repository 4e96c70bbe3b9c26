import ReshardCore
import ReshardStore

/// The router's side of the strategies that switch first (`write_new_read_old`,
/// `routing_first`): the map names a moving range's new owner before its rows are copied there,
/// so a key may still be only on the old owner. The old owner takes no client writes any more
/// (it is fenced); reverse replication keeps it current with the new owner's.
///
/// - A write to a key the new owner has never seen first copies the old owner's row onto it (by
///   the version rule, fenced like the write): the store then gives the write a version above
///   the old row's, so no later copy, repair or read can put the older row back over it.
/// - A read takes the newer of both owners (`newest`), or the new owner's answer, falling back
///   to the old owner's for a key the new owner has never seen and copying the row on access
///   (`fallback`). A tombstone is an answer: a deleted row is never read or copied back.
extension ShardRouter {
    /// Copies the old owner's row of `pk` onto `handle`, the move's new owner, when it has never
    /// seen `pk`, before a write there. A copy refused by a fence throws like the write would.
    func copyFirst(_ table: TableName, pk: String, to handle: ShardHandle, move: Move, in current: Snapshot) async throws {
        guard try await call(handle, .get, { try await handle.store.get(table: table, pk: pk) }) == nil else { return }
        // An old owner this router cannot reach fails the write: writing without the copy could
        // give the write a version below the old row's.
        let old = try shard(move.source, in: current)
        guard let row = try await call(old, .get, { try await old.store.get(table: table, pk: pk) }) else { return }
        let changed = try await call(handle, .put) { try await handle.store.writeSecond(row, routedBy: current.map.generation) }
        secondWrites.recordRedirect(copied: changed ? 1 : 0, oldOwnerRead: false)
    }

    /// The answer to a read of `pk` that the new owner `handle` gave as `row`, given the old
    /// owner too (see the type's comment).
    func redirectedRead(
        _ table: TableName, pk: String, row: StoredRow?, from handle: ShardHandle, move: Move, reads: RouteModes.Reads,
        in current: Snapshot
    ) async throws -> (row: StoredRow?, shard: ShardID) {
        if reads == .fallback && row != nil { return (row, handle.record.id) }
        let old = try shard(move.source, in: current)
        let older = try await call(old, .get) { try await old.store.get(table: table, pk: pk) }
        guard let older, older.version > row?.version ?? 0 else { return (row, handle.record.id) }
        var copied = 0
        if reads == .fallback {
            // On access, so the keys clients use move first; a write that got there first wins
            // by the version rule, and a failed copy only leaves the row for the mover.
            do {
                if try await handle.store.writeSecond(older, routedBy: current.map.generation) { copied = 1 }
            } catch {
                logger.debug("a copy on access failed", metadata: ["shard": "\(handle.record.id)", "error": "\(error)"])
            }
        }
        secondWrites.recordRedirect(copied: copied, oldOwnerRead: true)
        return (older, move.source)
    }

    /// The handle of `id`, which a move names, or 503 when this router has not opened it.
    func shard(_ id: ShardID, in current: Snapshot) throws(RouterError) -> ShardHandle {
        guard let handle = current.shards[id] else { throw RouterError.shardUnavailable(id.rawValue, "not registered on this router") }
        return handle
    }

    /// Live rows of `shardKey` on the new owner `handle` (`rows`) merged with the old owner's,
    /// newest version per key; a key whose newest version is a tombstone on either side is left
    /// out, so the listing never shows a deleted row.
    func redirectedList(
        _ table: TableName, shardKey: String, after: String?, rows: [StoredRow], from handle: ShardHandle, move: Move, limit: Int,
        in current: Snapshot
    ) async throws -> [(row: StoredRow, shard: ShardID)] {
        let old = try shard(move.source, in: current)
        let theirs = try await call(old, .list) {
            try await old.store.rows(table: table, shardKey: shardKey, after: after, limit: limit).value
        }
        var merged: [String: (row: StoredRow, shard: ShardID)] = [:]
        for row in rows { merged[row.pk] = (row, handle.record.id) }
        for row in theirs where (merged[row.pk]?.row.version ?? 0) < row.version {
            // The new owner's live list leaves out its tombstones: ask it about this key alone.
            let mine = try await call(handle, .get) { try await handle.store.get(table: table, pk: row.pk) }
            if let mine, mine.version >= row.version {
                // As new as the old owner's: its tombstone hides the row, and a live row answers
                // itself, also one the copy (or a write) put there after the new owner's list was
                // read, which that list lacks.
                merged[row.pk] = mine.body == nil ? nil : (mine, handle.record.id)
                continue
            }
            merged[row.pk] = (row, move.source)
        }
        // Byte order, as the stores list (SQLite's BINARY collation, PostgreSQL's "C").
        let listed = merged.values.filter { $0.row.body != nil }.sorted { $0.row.pk.utf8.lexicographicallyPrecedes($1.row.pk.utf8) }
        return Array(listed.prefix(limit))
    }
}
