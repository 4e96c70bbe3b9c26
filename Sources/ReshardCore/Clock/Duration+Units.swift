extension Duration {
    /// The duration in whole microseconds (negative durations clamp to 0).
    public var wholeMicroseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    }

    /// The duration in whole milliseconds (negative durations clamp to 0).
    public var wholeMilliseconds: UInt64 { wholeMicroseconds / 1_000 }

    /// The duration in milliseconds, fractional.
    public var milliseconds: Double { seconds * 1_000 }

    /// The duration in seconds, fractional.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
