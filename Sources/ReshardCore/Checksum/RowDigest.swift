/// The per-row digest behind range checksums: a prefix of the MD5 of (pk, version, tombstone flag, body).
public enum RowDigest {
    /// The digest of one row; equal rows give equal digests on every backend.
    ///
    /// It is the first 8 bytes (big-endian, as a signed 64-bit pattern) of the MD5 of
    /// `"<pk bytes>:<pk>:<version as signed 64-bit>:"` followed by `d` for a tombstone or `l` and
    /// the body. PostgreSQL computes exactly this with `md5()` (see `sqlExpression`), so its
    /// shards keep the digest in a generated column and a client write stays one statement.
    public static func of(pk: String, version: UInt64, body: String?) -> UInt64 {
        var text = "\(pk.utf8.count):\(pk):\(Int64(bitPattern: version)):"
        if let body {
            text += "l"
            text += body
        } else {
            text += "d"
        }
        let digest = MD5.digest(text.utf8)
        return digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// The same digest as a PostgreSQL expression over columns `pk`, `version` and `body`.
    public static let sqlExpression =
        "('x' || left(md5(octet_length(pk)::text || ':' || pk || ':' || version::text || ':' || "
        + "CASE WHEN body IS NULL THEN 'd' ELSE 'l' || body END), 16))::bit(64)::bigint"
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
