/// One entry of a shard's changelog: a row image after a client write, at a position that
/// only grows.
public struct Change: Hashable, Sendable {
    /// The changelog position; strictly increasing per shard, never reused.
    public let position: UInt64
    /// The row as written (a tombstone for a delete).
    public let row: StoredRow
    /// Wall-clock milliseconds when the shard recorded it, for lag in milliseconds.
    public let atMillis: UInt64

    /// A changelog entry.
    public init(position: UInt64, row: StoredRow, atMillis: UInt64) {
        self.position = position
        self.row = row
        self.atMillis = atMillis
    }
}

/// A record on a shard: client writes to `range` with a generation below `generation` are refused.
public struct Fence: Hashable, Sendable, Codable {
    /// The fenced range.
    public let range: HashRange
    /// The lowest generation still allowed to write.
    public let generation: UInt64

    /// A fence of `range` at `generation`.
    public init(range: HashRange, generation: UInt64) {
        self.range = range
        self.generation = generation
    }
}
