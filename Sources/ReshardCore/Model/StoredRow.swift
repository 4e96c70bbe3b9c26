/// A row as a shard stores it: live or a tombstone, with the version its owner gave it.
public struct StoredRow: Hashable, Sendable {
    /// The row's table.
    public var table: TableName
    /// The primary key.
    public var pk: String
    /// The shard key value the row is placed by.
    public var shardKey: String
    /// `KeyHash.of(shardKey)`.
    public var hash: UInt64
    /// The last-write version.
    public var version: UInt64
    /// The row's JSON object text; `nil` for a tombstone.
    public var body: String?

    /// A row; `body == nil` makes it a tombstone.
    public init(table: TableName, pk: String, shardKey: String, version: UInt64, body: String?) {
        self.table = table
        self.pk = pk
        self.shardKey = shardKey
        self.hash = KeyHash.of(shardKey)
        self.version = version
        self.body = body
    }

    /// Whether the row is a tombstone.
    public var isDeleted: Bool { body == nil }

    /// What the row weighs where a range summary counts bytes: its key's and body's UTF-8 bytes.
    public var payloadBytes: Int { pk.utf8.count + (body?.utf8.count ?? 0) }

    /// The row's contribution to a range checksum.
    public var digest: UInt64 { RowDigest.of(pk: pk, version: version, body: body) }
}

/// Where a chunked range scan stopped: the last `(hash, pk)` it returned. Scans resume after it.
public struct ScanCursor: Hashable, Sendable, Codable, Comparable {
    /// The hash of the last row returned.
    public let hash: UInt64
    /// The primary key of the last row returned.
    public let pk: String

    /// The cursor after `(hash, pk)`.
    public init(hash: UInt64, pk: String) {
        self.hash = hash
        self.pk = pk
    }

    /// `(hash, pk)` order, the order of every range scan.
    public static func < (lhs: ScanCursor, rhs: ScanCursor) -> Bool {
        if lhs.hash != rhs.hash { return lhs.hash < rhs.hash }
        // Byte order of UTF-8, the BINARY collation both SQLite and PostgreSQL ("C") scan in.
        return lhs.pk.utf8.lexicographicallyPrecedes(rhs.pk.utf8)
    }
}
