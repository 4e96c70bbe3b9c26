extension HashRange {
    /// The width of each of `parts` equal sub-ranges (the last may be shorter); at least 1.
    /// (Only defined for `parts > 1`: one part of the whole space is 2^64 hashes wide.)
    public func subrangeWidth(parts: Int) -> UInt64 {
        // With at least two parts (last - start) / parts + 1 cannot overflow, and parts * width
        // always covers the range.
        (last - start) / UInt64(max(2, parts)) + 1
    }

    /// The range cut into at most `parts` consecutive sub-ranges of equal width (the last may be
    /// shorter; a range narrower than `parts` hashes yields fewer). Verification compares these
    /// one by one, so a difference is looked for in one small slice, not the whole move.
    public func split(into parts: Int) -> [HashRange] {
        guard parts > 1 else { return [self] }
        let width = subrangeWidth(parts: parts)
        var result: [HashRange] = []
        var lower = start
        while true {
            let (upper, overflow) = lower.addingReportingOverflow(width - 1)
            let partLast = overflow ? last : min(upper, last)
            result.append(HashRange(start: lower, last: partLast))
            guard partLast < last else { return result }
            lower = partLast + 1
        }
    }

    /// Which of `split(into: parts)` holds `hash` (which must lie in the range).
    public func subrangeIndex(of hash: UInt64, parts: Int) -> Int {
        guard parts > 1 else { return 0 }
        return Int((hash - start) / subrangeWidth(parts: parts))
    }
}
