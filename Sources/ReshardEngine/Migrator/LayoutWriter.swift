import ReshardCore
import ReshardStore

/// One row as a table sees it, whatever its layout stores: the primary key, the version of its
/// last write, and the body (nil: deleted).
struct RowImage: Hashable, Sendable {
    let pk: String
    let version: UInt64
    let body: String?

    /// The images among `rows` (read from storage by a scan or a changelog) that belong to
    /// `layout`. A layout placed by primary key stores rows as they are. A layout with a lookup
    /// stores live rows under slots (`LookupEntry.slot`), where tombstones only mark places a
    /// row left or writes that were blocked, so they are skipped: its deletes are the lookup's
    /// entries without a key. Everything else (other tables) is skipped.
    static func images(_ rows: [StoredRow], in layout: TableDefinition) -> [RowImage] {
        rows.compactMap { row in
            if row.table == layout.storage {
                guard layout.lookup != nil else { return RowImage(pk: row.pk, version: row.version, body: row.body) }
                guard let body = row.body, let (pk, _) = LookupEntry.unslot(row.pk) else { return nil }
                return RowImage(pk: pk, version: row.version, body: body)
            }
            if row.table == layout.lookup, let entry = LookupEntry(row: row), entry.key == nil {
                return RowImage(pk: row.pk, version: entry.version, body: nil)
            }
            return nil
        }
    }
}

/// Why a row cannot be placed in a layout.
struct LayoutError: Error, CustomStringConvertible {
    let description: String

    static func missingShardKey(_ pk: String, field: String, table: TableName) -> LayoutError {
        LayoutError(
            description:
                "row \(pk) of table \(table) has no usable \(field) (a string or an integer of 1 to \(RowKey.maxBytes) printable bytes): give it one and resume, or roll the migration back"
        )
    }
}

/// Writes row images into a layout with the version each already has: the migrator's half of a
/// shard-key change, which builds the new layout from the old one's rows and changes (and keeps
/// the old one current from the new one's during the bake). Every write obeys the version rule,
/// so a copy and a change of the same row, or one applied twice, settle on the newest; a layout
/// with a lookup is written by the lookup protocol (`LookupEntry`), with the entry's
/// compare-and-set ordering a copy and a change of one row that race.
struct LayoutWriter: Sendable {
    /// The layout written into.
    let layout: TableDefinition
    /// The map rows are placed by.
    let map: ShardMap
    let stores: any StoreDirectory

    /// Rows of different primary keys written at once.
    static let parallelism = 16

    /// Writes `images`; returns how many changed the layout.
    @discardableResult
    func apply(_ images: [RowImage]) async throws -> Int {
        guard !images.isEmpty else { return 0 }
        guard layout.lookup != nil else { return try await applyByPrimaryKey(images) }
        // Only each row's newest image: by the version rule the older ones would be overwritten
        // (or refused) anyway, and each costs a few round trips. Rows side by side.
        var newest: [String: RowImage] = [:]
        for image in images where image.version >= newest[image.pk]?.version ?? 0 { newest[image.pk] = image }
        let placed = try await concurrentMap(newest.values, width: Self.parallelism) { try await self.place($0) }
        return placed.filter { $0 }.count
    }

    private func applyByPrimaryKey(_ images: [RowImage]) async throws -> Int {
        guard layout.isShardedByPrimaryKey else {
            throw LayoutError(
                description: "layout \(layout.layoutGeneration) of \(layout.name) has no lookup and is not placed by primary key")
        }
        var byOwner: [ShardID: [StoredRow]] = [:]
        for image in images {
            let row = StoredRow(table: layout.storage, pk: image.pk, shardKey: image.pk, version: image.version, body: image.body)
            byOwner[map.owner(of: row.hash), default: []].append(row)
        }
        var changed = 0
        for (owner, rows) in byOwner.sorted(by: { $0.key < $1.key }) { changed += try await stores.shardStore(owner).apply(rows) }
        return changed
    }

    /// One image through the lookup protocol; whether it changed the layout.
    private func place(_ image: RowImage) async throws -> Bool {
        guard let lookup = layout.lookup else { return false }
        let storage = layout.storage
        let newKey = try image.body.map { try shardKey(of: image.pk, body: $0) }
        let home = try store(for: image.pk)
        for _ in 0..<ShardRouter.lookupAttempts {
            let stored = try await home.get(table: lookup, pk: image.pk)
            var current: LookupEntry?
            if let stored {
                if stored.isDeleted {
                    // A finished delete: its lookup tombstone is one version above the delete's.
                    if image.version < stored.version { return false }
                } else {
                    guard let entry = LookupEntry(row: stored) else {
                        throw LayoutError(description: "the lookup entry of \(lookup)/\(image.pk) is unreadable")
                    }
                    if entry.version > image.version { return false }
                    current = entry
                }
            }
            var claimed: LookupEntry
            if let current, current.version == image.version {
                // This image was claimed before (a copy and a change of one write, or a round
                // redone after a crash): finish what the claim started.
                claimed = current
            } else {
                let truth = try await truth(of: current, pk: image.pk)
                claimed = LookupEntry(key: newKey, previous: truth, version: image.version)
                let claim = Placement(
                    row: claimed.row(table: lookup, pk: image.pk), expected: stored.map { .version($0.version) } ?? .absent, generation: nil
                )
                switch try await home.place(claim) {
                case .conflict: continue
                case .notNewer: return false
                case .written: break
                }
            }
            if let key = claimed.key, let body = image.body {
                let row = StoredRow(
                    table: storage, pk: LookupEntry.slot(pk: image.pk, key: key), shardKey: key, version: image.version, body: body)
                _ = try await store(for: key).place(Placement(row: row, generation: nil))
            }
            var left = PrimaryKeyLookup.leftBehind(current, newKey: claimed.key)
            if let previous = claimed.previous, previous != claimed.key, !left.contains(previous) { left.append(previous) }
            for key in left {
                let tombstone = StoredRow(
                    table: storage, pk: LookupEntry.slot(pk: image.pk, key: key), shardKey: key, version: image.version, body: nil)
                _ = try await store(for: key).place(Placement(row: tombstone, generation: nil))
            }
            return true
        }
        throw LayoutError(description: "writes of row \(image.pk) of \(layout.name) kept racing; the round is tried again")
    }

    /// Where the row lives before a new write, settling a move that may not have landed (see
    /// `PrimaryKeyLookup.truth`).
    private func truth(of entry: LookupEntry?, pk: String) async throws -> String? {
        switch PrimaryKeyLookup.truth(entry) {
        case .known(let key):
            return key
        case .checkLanding(let key, let previous, let version):
            let slot = LookupEntry.slot(pk: pk, key: key)
            let place = try store(for: key)
            switch PrimaryKeyLookup.landing(of: version, at: try await place.get(table: layout.storage, pk: slot)) {
            case .landed: return key
            case .blocked: return previous
            case .unknown:
                let block = StoredRow(table: layout.storage, pk: slot, shardKey: key, version: version, body: nil)
                _ = try await place.place(Placement(row: block, generation: nil))
                let after = try await place.get(table: layout.storage, pk: slot)
                return PrimaryKeyLookup.landing(of: version, at: after) == .landed ? key : previous
            }
        }
    }

    /// The new shard key of row `pk` from its body: the layout's field, a string or an integer.
    private func shardKey(of pk: String, body: String) throws -> String {
        let members = try? StrictJSON.object(Array(body.utf8)).members
        guard let key = members?[layout.shardKey]?.keyText, RowKey.isValid(key) else {
            throw LayoutError.missingShardKey(pk, field: layout.shardKey, table: layout.name)
        }
        return key
    }

    private func store(for key: String) throws -> any ShardStore {
        try stores.shardStore(map.owner(of: KeyHash.of(key)))
    }
}
