/// A hybrid logical clock for row versions: 48 bits of wall-clock milliseconds, 16 bits of
/// counter, as one `UInt64`.
///
/// Every timestamp it hands out is larger than every one it handed out or observed before, so
/// versions keep growing even when the wall clock steps back; when it does, the counter (and,
/// past 65,535 ticks, the millisecond part) advances logically until the wall clock catches up.
/// The caller passes the wall time: the clock itself never reads one.
public struct HybridLogicalClock: Sendable, Hashable {
    /// The largest timestamp handed out or observed.
    public private(set) var last: UInt64

    /// Versions stay below 2^63 so they fit a signed 64-bit column in SQLite and PostgreSQL;
    /// 47 bits of milliseconds last until the year 6429.
    public static let maxTimestamp: UInt64 = (1 << 63) - 1

    /// A clock that has seen nothing yet, or resumes after `last`.
    public init(last: UInt64 = 0) {
        self.last = last
    }

    /// The next timestamp at wall time `wallMillis` (milliseconds since the Unix epoch).
    public mutating func next(wallMillis: UInt64) -> UInt64 {
        let physical = Self.timestamp(millis: wallMillis)
        let candidate = max(physical, last + 1)
        precondition(candidate <= Self.maxTimestamp, "hybrid logical clock exhausted")
        last = candidate
        return candidate
    }

    /// Moves the clock past a timestamp seen elsewhere (a version a shard assigned), so the next
    /// write from this router is newer than anything it has read.
    public mutating func observe(_ timestamp: UInt64) {
        last = max(last, min(timestamp, Self.maxTimestamp - 1))
    }

    /// The wall-clock milliseconds part of a timestamp.
    public static func millis(of timestamp: UInt64) -> UInt64 { timestamp >> 16 }

    /// The smallest timestamp of wall time `millis`: every version given out at that time or
    /// later is at least this.
    public static func timestamp(millis: UInt64) -> UInt64 { min(millis, maxTimestamp >> 16) << 16 }
}

/// The version rule of DESIGN.md: the owning shard assigns `max(current + 1, proposed)`, so one
/// key's versions only grow whichever router wrote.
public enum VersionRule {
    /// The version a client write gets given the row's current version (nil when absent).
    public static func next(current: UInt64?, proposed: UInt64) -> UInt64 {
        guard let current else { return max(proposed, 1) }
        // Saturates rather than traps: a row at the last version (only a damaged or hand-edited
        // shard can hold one; clocks stop far below it) must not crash every write of its key.
        let (successor, overflow) = current.addingReportingOverflow(1)
        return overflow ? current : max(successor, proposed)
    }

    /// Whether an incoming copy or change replaces the stored row: strictly newer only, so
    /// applying the same change twice, or an old copy after a new change, changes nothing.
    public static func replaces(incoming: UInt64, stored: UInt64?) -> Bool {
        guard let stored else { return true }
        return incoming > stored
    }
}
