import ReshardCore

extension RowImage {
    /// Row `pk` as a layout with a primary-key lookup holds it, read the way a router reads it
    /// (`PrimaryKeyLookup`): its entry (`readEntry`), then the row at the entry's key and, while
    /// a move is in flight, at the key before it (`readSlot(key)`). A delete is an image without
    /// a body at the delete's version; nil when the layout has no trace of the key; a damaged
    /// entry is an image no honest row equals (version 0, body `?`). A row that keeps moving
    /// while it is read is an error after `attempts` passes, not an image.
    ///
    /// Shared by the relayout verification (which reads stores directly) and the router's canary
    /// (which reads through its routing), so both judge a new layout by one reading of it.
    static func throughLookup(
        _ pk: String, attempts: Int = ShardRouter.lookupAttempts, readEntry: () async throws -> StoredRow?,
        readSlot: (String) async throws -> StoredRow?
    ) async throws -> RowImage? {
        // A write that lands between the reads of one pass (its row placed at the new key after
        // we looked there, its tombstone at the old key before we looked there) is no damage:
        // the pass is read again from the entry, as a router's read does (`lookupGet`).
        for _ in 0..<attempts {
            guard let stored = try await readEntry() else { return nil }
            guard let entry = LookupEntry(row: stored) else {
                // A finished delete (a tombstone one version above the delete's), or damage.
                // Saturating: a tombstone at version 0 in a damaged shard file must not trap a router.
                return stored.isDeleted
                    ? RowImage(pk: pk, version: max(stored.version, 1) - 1, body: nil)
                    : RowImage(pk: pk, version: 0, body: "?")
            }
            guard let first = PrimaryKeyLookup.firstRead(entry) else { return RowImage(pk: pk, version: entry.version, body: nil) }
            var step = PrimaryKeyLookup.afterFirst(entry, row: try await readSlot(first))
            if case .readPrevious(let previous) = step { step = PrimaryKeyLookup.afterPrevious(entry, row: try await readSlot(previous)) }
            guard case .answer(let row) = step else { continue }
            // A delete reads as its entry's version; a row as its own.
            guard let row, row.body != nil else {
                return RowImage(pk: pk, version: entry.key == nil ? entry.version : row?.version ?? 0, body: nil)
            }
            return RowImage(pk: pk, version: row.version, body: row.body)
        }
        throw LayoutError(description: "row \(pk) kept moving while it was read (\(attempts) attempts); it is read again later")
    }

    /// The image as a row of `table` keyed by its primary key alone, so that images of one row in
    /// two layouts compare by version and content only (`RowDiff`, `ShadowRead`).
    func row(in table: TableName) -> StoredRow {
        StoredRow(table: table, pk: pk, shardKey: pk, version: version, body: body)
    }
}
