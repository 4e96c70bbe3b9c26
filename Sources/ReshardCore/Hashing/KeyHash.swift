/// The keyspace hash of a shard key and its order-preserving storage form.
public enum KeyHash {
    /// `xxHash64(seed 0)` of the shard key's UTF-8 bytes: where a row lives.
    public static func of(_ shardKey: String) -> UInt64 {
        XXHash64.hash(shardKey)
    }

    /// Maps a hash to a signed integer with the same order, because SQLite and PostgreSQL
    /// integers are signed and range scans must compare hashes as unsigned numbers.
    public static func ordered(_ hash: UInt64) -> Int64 {
        Int64(bitPattern: hash ^ 0x8000_0000_0000_0000)
    }

    /// The inverse of `ordered(_:)`.
    public static func unordered(_ stored: Int64) -> UInt64 {
        UInt64(bitPattern: stored) ^ 0x8000_0000_0000_0000
    }
}
