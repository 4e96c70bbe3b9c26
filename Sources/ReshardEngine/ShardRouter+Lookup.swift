import ReshardCore
import ReshardStore

/// Reads and writes by primary key of a table whose layout is placed by another field and keeps
/// a primary-key lookup (a shard-key change made it so; `LookupEntry` has the protocol). The
/// application keeps addressing rows by primary key: the router finds the shard key in the
/// entry, which lives on the shard that owns the primary key's hash, as Vitess's owned lookup
/// vindex does. Rows are stored under their shard key and primary key together
/// (`LookupEntry.slot`), so each pair is a place of its own. A read costs two store reads (three while a write that moves the row is in
/// flight); a write reads the entry, claims the next version on it (compare-and-set), writes the
/// row at its shard key with that version, and tombstones the places the row left.
extension ShardRouter {
    /// How often a reader or writer starts again when a concurrent write of the same key moved
    /// on under it, before it answers 503.
    static let lookupAttempts = 8

    /// Reads row `pk` through the lookup; with `given`, only a row placed under that shard key.
    func lookupGet(_ definition: TableDefinition, lookup: TableName, pk: String, given: String?) async throws -> RowRead {
        for _ in 0..<Self.lookupAttempts {
            guard let entry = try await lookupEntry(lookup, pk: pk, of: definition).entry, let first = PrimaryKeyLookup.firstRead(entry)
            else {
                throw RouterError.rowNotFound
            }
            var read = try await readRow(definition.storage, pk: LookupEntry.slot(pk: pk, key: first), key: first, of: definition)
            var step = PrimaryKeyLookup.afterFirst(entry, row: read.row)
            if case .readPrevious(let previous) = step {
                read = try await readRow(definition.storage, pk: LookupEntry.slot(pk: pk, key: previous), key: previous, of: definition)
                step = PrimaryKeyLookup.afterPrevious(entry, row: read.row)
            }
            guard case .answer(let row) = step else { continue }
            guard let row, let body = row.body, given == nil || given == row.shardKey else { throw RouterError.rowNotFound }
            observe(row.version)
            return RowRead(pk: pk, version: row.version, body: body, shard: read.shard)
        }
        throw RouterError.keyContended(pk)
    }

    /// Writes row `pk` under `newKey` with `body`, or deletes it (both nil; with `given`, only a
    /// row placed under that shard key), through the lookup.
    ///
    /// `condition` is checked against the row where the entry says it lives, read after the
    /// entry; the claim's compare-and-set on the entry then fails if any write of the key came
    /// between, so the check holds at the claim as if made in its transaction.
    func lookupWrite(
        _ definition: TableDefinition, lookup: TableName, pk: String, newKey: String?, body: String?, given: String?,
        condition: WriteCondition?
    ) async throws -> WriteReceipt {
        let storage = definition.storage
        for _ in 0..<Self.lookupAttempts {
            let (current, stored) = try await lookupEntry(lookup, pk: pk, of: definition)
            // Where the row lives now. A move that may not have landed is settled first: landed,
            // or blocked by a tombstone of its version so that it never lands.
            var truth: String?
            switch PrimaryKeyLookup.truth(current) {
            case .known(let key):
                truth = key
            case .checkLanding(let key, let previous, let version):
                let atKey = try await readRow(storage, pk: LookupEntry.slot(pk: pk, key: key), key: key, of: definition).row
                switch PrimaryKeyLookup.landing(of: version, at: atKey) {
                case .landed: truth = key
                case .blocked: truth = previous
                case .unknown:
                    let block = StoredRow(
                        table: storage, pk: LookupEntry.slot(pk: pk, key: key), shardKey: key, version: version, body: nil)
                    _ = try await routedPlacement(Placement(row: block, generation: nil), of: definition.name)
                    // Ours or another writer's block, or the write itself if it got there first.
                    let after = try await readRow(storage, pk: LookupEntry.slot(pk: pk, key: key), key: key, of: definition).row
                    truth = PrimaryKeyLookup.landing(of: version, at: after) == .landed ? key : previous
                }
            }
            var live: UInt64?
            if let truth, body == nil || condition != nil {
                let row = try await readRow(storage, pk: LookupEntry.slot(pk: pk, key: truth), key: truth, of: definition).row
                live = row.flatMap { $0.isDeleted ? nil : $0.version }
            }
            // A row under another shard key than the delete names is, to this request, absent.
            if body == nil && given != nil && given != truth { live = nil }
            if let condition, !condition.admits(live: live) { throw RouterError.preconditionFailed }
            if body == nil && live == nil { throw RouterError.rowNotFound }
            let created = body != nil && (condition == nil ? truth == nil : live == nil)
            let proposed = LookupEntry(key: newKey, previous: truth, version: nextVersion()).row(table: lookup, pk: pk)
            let claim = Placement(row: proposed, expected: stored.map { .version($0) } ?? .absent, assignsVersion: true, generation: nil)
            let (claimed, claimShard, generation) = try await routedPlacement(claim, of: definition.name)
            guard case .written(let version) = claimed else { continue }
            var shard = claimShard
            if let newKey, let body {
                let row = StoredRow(
                    table: storage, pk: LookupEntry.slot(pk: pk, key: newKey), shardKey: newKey, version: version, body: body)
                let (outcome, rowShard, _) = try await routedPlacement(Placement(row: row, generation: nil), of: definition.name)
                // Not written: a later writer blocked ours (it found it not landed and left the
                // row where it was) or overtook it. It must not be acknowledged: the later
                // writer may have decided where the row lives without it.
                guard case .written = outcome else { throw RouterError.keyContended(pk) }
                shard = rowShard
            }
            var left = PrimaryKeyLookup.leftBehind(current, newKey: newKey)
            if let truth, truth != newKey, !left.contains(truth) { left.append(truth) }
            guard newKey == nil else {
                for key in left { _ = try await leaveBehind(pk, key: key, version: version, of: definition) }
                var receipt = WriteReceipt(pk: pk, version: version, shard: shard, generation: generation)
                receipt.created = created
                return receipt
            }
            // A delete happened with its claim: reads by primary key find no row from then on.
            // What follows tidies the places the row left (listings by those keys) and finishes
            // the entry; should it fail (a switch retired the layout under it, a shard went away),
            // the next write of the key tidies them, and the client must not be told that a delete
            // which happened failed (a retry would then answer 404 for it).
            do {
                for key in left {
                    let tombstoneShard = try await leaveBehind(pk, key: key, version: version, of: definition)
                    if key == truth { shard = tombstoneShard }
                }
                // The entry becomes a tombstone (garbage collection purges it like any other), one
                // version on. A writer that claimed meanwhile wins.
                let finished = StoredRow(table: lookup, pk: pk, shardKey: pk, version: version + 1, body: nil)
                _ = try await routedPlacement(Placement(row: finished, expected: .version(version), generation: nil), of: definition.name)
            } catch {
                logger.debug("a delete's tidying is left to the next write", metadata: ["pk": "\(pk)", "error": "\(error)"])
            }
            return WriteReceipt(pk: pk, version: version, shard: shard, generation: generation)
        }
        throw RouterError.keyContended(pk)
    }

    /// Tombstones row `pk`'s place under `key` at `version` (a place the row left); the shard.
    private func leaveBehind(_ pk: String, key: String, version: UInt64, of definition: TableDefinition) async throws -> ShardID {
        let tombstone = StoredRow(
            table: definition.storage, pk: LookupEntry.slot(pk: pk, key: key), shardKey: key, version: version, body: nil)
        return try await routedPlacement(Placement(row: tombstone, generation: nil), of: definition.name).1
    }

    /// Row `pk` as `layout` (one with a lookup) holds it, read through routing like a client
    /// read: a shard-key change's canary compares it with the old layout's row.
    func layoutImage(_ layout: TableDefinition, pk: String) async throws -> RowImage? {
        guard let lookup = layout.lookup else { return nil }
        return try await RowImage.throughLookup(
            pk, readEntry: { try await readRow(lookup, pk: pk, key: pk, of: layout).row },
            readSlot: { key in try await readRow(layout.storage, pk: LookupEntry.slot(pk: pk, key: key), key: key, of: layout).row })
    }

    /// The lookup entry of `pk` and the version of its lookup row (a tombstone's too: a finished
    /// delete), for the compare-and-set of the next claim.
    private func lookupEntry(_ lookup: TableName, pk: String, of definition: TableDefinition) async throws -> (
        entry: LookupEntry?, stored: UInt64?
    ) {
        guard let row = try await readRow(lookup, pk: pk, key: pk, of: definition).row else { return (nil, nil) }
        if row.isDeleted { return (nil, row.version) }
        guard let entry = LookupEntry(row: row) else {
            throw RouterError.corruptLookup(lookup, pk: pk)
        }
        return (entry, row.version)
    }

    /// Row `pk` of `table` placed under `key`, read from its owner like a client read (a fence
    /// above our map re-reads the map; a strategy that switched first merges the old owner).
    func readRow(_ table: TableName, pk: String, key: String, of definition: TableDefinition) async throws -> (
        row: StoredRow?, shard: ShardID
    ) {
        let hash = KeyHash.of(key)
        var redirect: (move: Move, reads: RouteModes.Reads)?
        let (handle, row) = try await fencedRead(key, .get, of: definition) { handle in
            redirect = secondWrites.redirect(hash, owner: handle.record.id)
            return try await handle.store.read(table: table, pk: pk, shardKey: key)
        }
        guard let (move, reads) = redirect else { return (row, handle.record.id) }
        return try await redirectedRead(table, pk: pk, row: row, from: handle, move: move, reads: reads, in: snapshot)
    }

    /// One placement, routed like a client write (`routed`): held during a cutover of its range,
    /// refused by a fence and tried again on the newer map's owner. Returns what it did, the shard
    /// and the map generation it was routed by. `placement.generation` is replaced by the
    /// router's.
    func routedPlacement(_ placement: Placement, of table: TableName) async throws -> (PlacementOutcome, ShardID, UInt64) {
        let row = placement.row
        return try await routed(row.shardKey, hash: row.hash, table: table) { handle, current in
            if let (move, _) = secondWrites.redirect(row.hash, owner: handle.record.id) {
                try await copyFirst(row.table, pk: row.pk, to: handle, move: move, in: current)
            }
            let routedPlacement = Placement(
                row: row, expected: placement.expected, assignsVersion: placement.assignsVersion, generation: current.map.generation)
            let outcome = try await call(handle, row.isDeleted ? .delete : .put) { try await handle.store.place(routedPlacement) }
            if case .written(let version) = outcome { observe(version) }
            return (outcome, handle.record.id, current.map.generation)
        }
    }
}
