/// What an operator may change while a migration runs: how fast it copies and how long it bakes.
/// Everything else shapes work already done (chunks, sub-ranges, canary steps) or promises made
/// to routers, so it stays as created.
public struct MigrationAdjustment: Hashable, Sendable {
    /// A new ceiling on copied rows per second; nil leaves it as it is.
    public var maxRowsPerSecond: Int?
    /// A new bake length; nil leaves it as it is. A bake under way ends this long after it began.
    public var bakeMillis: UInt64?

    /// A change of either or both.
    public init(maxRowsPerSecond: Int? = nil, bakeMillis: UInt64? = nil) {
        self.maxRowsPerSecond = maxRowsPerSecond
        self.bakeMillis = bakeMillis
    }
}

extension MigrationStateMachine {
    /// Applies an operator's adjustment to a migration that has not ended. The new settings are
    /// part of the journal (the runner journals every command), so a resumed migration keeps
    /// them; values outside `MigrationSettings`' bounds are refused with nothing changed.
    mutating func adjust(_ adjustment: MigrationAdjustment, now: UInt64) -> MigrationOutcome {
        guard !phase.isTerminal else { return .rejected("migration \(id) has ended (\(phase.rawValue)); nothing to adjust") }
        guard adjustment.maxRowsPerSecond != nil || adjustment.bakeMillis != nil else {
            return .rejected("an adjustment names max_rows_per_second, bake_ms or both")
        }
        var changed = settings
        if let rate = adjustment.maxRowsPerSecond { changed.maxRowsPerSecond = rate }
        if let bake = adjustment.bakeMillis { changed.bakeMillis = bake }
        if let violation = changed.violation() { return .rejected("\(violation)") }
        let previousBake = settings.bakeMillis
        settings = changed
        if adjustment.maxRowsPerSecond != nil { pacing?.throttle.setCeiling(maxRowsPerSecond: changed.maxRowsPerSecond) }
        if let bake = adjustment.bakeMillis, let until = bakeUntil, phase == .baking || interruptedBake {
            // The bake keeps its start (the end it was given less its length: a resume after a
            // failure re-enters baking in the phase log but keeps the end): a shorter bake may be
            // over at once, and the next round ends it.
            let began = until.subtractingClamped(previousBake)
            bakeUntil = began.adding(saturating: bake)
        }
        return .accepted
    }

    /// A bake that a pause or failure interrupted resumes with the new length too.
    private var interruptedBake: Bool { interrupted == .baking }
}

extension UInt64 {
    /// `self - other`, or 0 where it would be negative.
    fileprivate func subtractingClamped(_ other: UInt64) -> UInt64 { self > other ? self - other : 0 }
}
