/// The per-row digest behind range checksums: xxHash64 of (pk, version, tombstone flag, body).
public enum RowDigest {
    /// The digest of one row; equal rows give equal digests on every backend.
    public static func of(pk: String, version: UInt64, body: String?) -> UInt64 {
        var builder = DigestBuilder()
        builder.append(pk)
        builder.append(version)
        builder.append(body == nil)
        builder.append(body ?? "")
        return builder.finish()
    }
}

/// Count and order-independent checksum of a set of rows (a hash range of one table).
///
/// The checksum is the wrapping sum of row digests, so it can be computed in any order, in
/// chunks, or inside the database as two 32-bit partial sums, and still compare equal.
public struct RangeSummary: Hashable, Sendable, Codable {
    /// Rows including tombstones.
    public var rows: Int
    /// Live rows only.
    public var liveRows: Int
    /// Wrapping sum of every row's digest.
    public var checksum: UInt64
    /// UTF-8 bytes of primary keys and bodies: what a copy of the rows moves.
    public var bytes: Int

    /// A summary of nothing.
    public static let empty = RangeSummary(rows: 0, liveRows: 0, checksum: 0, bytes: 0)

    /// A summary from its parts.
    public init(rows: Int, liveRows: Int, checksum: UInt64, bytes: Int) {
        self.rows = rows
        self.liveRows = liveRows
        self.checksum = checksum
        self.bytes = bytes
    }

    /// The summary of `rows`, computed in memory.
    public init(of rows: some Sequence<StoredRow>) {
        self = .empty
        for row in rows { add(row) }
    }

    /// Adds one row.
    public mutating func add(_ row: StoredRow) {
        rows += 1
        liveRows += row.isDeleted ? 0 : 1
        checksum = checksum &+ row.digest
        bytes += row.pk.utf8.count + (row.body?.utf8.count ?? 0)
    }

    /// Combines summaries of disjoint row sets.
    public static func + (lhs: RangeSummary, rhs: RangeSummary) -> RangeSummary {
        RangeSummary(
            rows: lhs.rows + rhs.rows, liveRows: lhs.liveRows + rhs.liveRows, checksum: lhs.checksum &+ rhs.checksum,
            bytes: lhs.bytes + rhs.bytes)
    }

    /// Rebuilds the wrapping sum from the sums of the high and low 32-bit halves of each digest,
    /// which a database can add up without overflowing a signed 64-bit integer.
    public static func checksum(highSum: UInt64, lowSum: UInt64) -> UInt64 {
        (highSum << 32) &+ lowSum
    }
}
