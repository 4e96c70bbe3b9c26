import Synchronization

/// A clock that only moves when told to, or when something sleeps on it: a sleep advances the
/// clock to its deadline at once, as if the wait had passed. One logical process (a simulation)
/// then runs as fast as the machine allows, the same way every time.
///
/// Its instants are milliseconds from an arbitrary origin, which also serve as wall time
/// (`wallMillis`), so the migrator's wall clock and its sleeps agree.
public final class ManualClock: Clock, Sendable {
    /// A point on the manual clock.
    public struct Instant: InstantProtocol, Hashable, Sendable {
        /// Milliseconds since the clock's origin.
        public let millis: UInt64

        /// An instant `millis` after the origin.
        public init(millis: UInt64) {
            self.millis = millis
        }

        public func advanced(by duration: Duration) -> Instant {
            let step = duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000
            return Instant(millis: step >= 0 ? millis &+ UInt64(step) : millis - min(millis, UInt64(-step)))
        }

        public func duration(to other: Instant) -> Duration {
            other.millis >= millis ? .milliseconds(other.millis - millis) : .milliseconds(-Int64(millis - other.millis))
        }

        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.millis < rhs.millis }
    }

    private let current: Mutex<UInt64>

    /// A clock standing at `millis`.
    public init(millis: UInt64 = 1_000_000) {
        current = Mutex(millis)
    }

    public var now: Instant { Instant(millis: current.withLock { $0 }) }

    /// The smallest step the clock takes.
    public var minimumResolution: Duration { .milliseconds(1) }

    /// The time in milliseconds, for code that reads a wall clock.
    public var wallMillis: UInt64 { current.withLock { $0 } }

    /// Moves the clock on by `millis`.
    public func advance(by millis: UInt64) {
        current.withLock { $0 &+= millis }
    }

    /// Moves the clock to `deadline` if it is later than now; nothing waits.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        current.withLock { $0 = max($0, deadline.millis) }
    }
}
