/// Limits a migration's copy work so the foreground does not pay for it. Pure: the runner
/// passes what it measured, the throttle answers how big the next chunk may be, how long to wait
/// before it, and why; the reason is shown in status.
///
/// The signals are the ones the field uses (gh-ost, the seeds): a rows-per-second ceiling, the
/// router's foreground p99 against its pre-migration baseline, and catch-up lag that grows.
public struct Throttle: Sendable, Hashable, Codable {
    /// The operator's ceiling, if any (`setCeiling` changes it while the copy runs).
    public private(set) var maxRowsPerSecond: Int?
    /// Foreground p99 above `latencyFactor` × baseline counts as hurting the application; nil
    /// turns the latency signal off.
    public let latencyFactor: Double?
    /// Paused rounds in a row after which the throttle concludes the copy is not what slows the
    /// foreground: on latency it re-baselines, on lag it copies one minimum chunk anyway, so a
    /// foreground that is slow for other reasons cannot stall a migration forever.
    public let maxPausedRounds: Int
    /// The largest and smallest chunk the throttle hands out.
    public let maxChunk: Int
    public let minChunk: Int
    /// How many chunks the migration runs side by side when nothing slows it: under a rows/s
    /// ceiling each gets its share of a second's budget.
    public let parallelism: Int
    /// The foreground p99 measured before the migration started, microseconds.
    public private(set) var baselineP99Micros: UInt64?
    /// The chunk size in force.
    public private(set) var chunkRows: Int
    /// Why the throttle is slowing down or pausing, if it is.
    public private(set) var reason: String?
    /// The signal behind `reason`, one of a few: what a metric label can carry (the reason
    /// itself holds figures, and would make a new series at every change).
    public private(set) var cause: Cause?
    private var lastBacklog: Int?
    private var growingRounds = 0
    private var healthyRounds = 0
    private var pausedRounds = 0

    /// The signals that slow a copy down.
    public enum Cause: String, Sendable, Hashable, Codable, CaseIterable {
        /// The foreground p99 is over its multiple of the baseline (or was re-baselined).
        case foregroundLatency = "foreground_latency"
        /// The old owners' changelog backlog kept growing.
        case lagGrowing = "lag_growing"
        /// The operator's rows-per-second ceiling.
        case rateLimit = "rate_limit"
    }

    /// What to do before the next copy chunk.
    public struct Decision: Sendable, Hashable {
        /// Rows for the next chunk (0 means: do not copy this round).
        public let chunkRows: Int
        /// Milliseconds to wait first.
        public let delayMillis: UInt64
        /// Why, when slowed or paused.
        public let reason: String?
        /// How many chunks may run this round: nil for as many as the migration runs side by
        /// side (under a rate ceiling too: the rest after a round pays for every row it copied),
        /// 1 while the copy is slowed (a burst of small chunks is still a burst to the foreground).
        public let maxChunks: Int?

        /// A decision.
        public init(chunkRows: Int, delayMillis: UInt64, reason: String?, maxChunks: Int?) {
            self.chunkRows = chunkRows
            self.delayMillis = delayMillis
            self.reason = reason
            self.maxChunks = maxChunks
        }
    }

    /// A throttle starting at `maxChunk` rows per chunk.
    public init(
        maxRowsPerSecond: Int? = nil, latencyFactor: Double? = 2, maxChunk: Int = 1_000, minChunk: Int = 50, maxPausedRounds: Int = 10,
        parallelism: Int = 1
    ) {
        self.parallelism = max(1, parallelism)
        self.maxRowsPerSecond = maxRowsPerSecond.map { max(1, $0) }
        self.latencyFactor = latencyFactor
        self.maxPausedRounds = max(1, maxPausedRounds)
        self.maxChunk = max(1, maxChunk)
        self.minChunk = max(1, min(minChunk, maxChunk))
        self.chunkRows = self.maxChunk
    }

    /// A new operator's ceiling, in force from the next decision; the chunk size and what the
    /// throttle learned of the foreground stay, so a change does not restart its slow-down.
    public mutating func setCeiling(maxRowsPerSecond: Int?) {
        self.maxRowsPerSecond = maxRowsPerSecond.map { max(1, $0) }
    }

    /// Records the foreground p99 before any copy work (the reference for "hurting").
    public mutating func setBaseline(p99Micros: UInt64) {
        baselineP99Micros = max(1, p99Micros)
    }

    /// The decision for the next chunk, from the latest foreground p99, the largest changelog
    /// backlog of the old owners, and how long the last chunk took when it is known.
    ///
    /// A smaller chunk alone does not lighten the load: rounds of small chunks run back to back
    /// and the copy keeps the machine as busy as before, in more pieces. So while the copy is
    /// slowed, each chunk is followed by a rest of one chunk's time per halving (a chunk of
    /// 1/8 the size rests three times as long as it ran): gh-ost's "nice ratio", growing as
    /// the throttle slows down.
    ///
    /// `copying` is false for cleanup chunks, which the operator's rows/s ceiling (a copy
    /// ceiling) does not pace, and which never stop: where a copy would pause, cleanup goes at
    /// `minimumPace` (stopping it buys nothing but a longer migration).
    ///
    /// The ceiling paces the rows the last round really copied (`lastChunkRows`), not the chunk
    /// size asked for: a move's range often holds far fewer rows than a chunk, and resting a
    /// whole chunk's share after each such round held a 300 rows/s ceiling to 9 rows/s.
    public mutating func decide(
        foregroundP99Micros: UInt64?, backlog: Int, lastChunkMicros: UInt64? = nil, lastChunkRows: Int? = nil, copying: Bool = true
    ) -> Decision {
        var slowReason: String?
        var slowCause: Cause?
        var latencyHurts = false
        if let factor = latencyFactor, let baseline = baselineP99Micros, let p99 = foregroundP99Micros,
            Double(p99) > factor * Double(baseline)
        {
            slowReason = "foreground p99 \(Self.millis(p99)) ms is over \(factor)x the baseline \(Self.millis(baseline)) ms"
            slowCause = .foregroundLatency
            latencyHurts = true
        }
        if let last = lastBacklog, backlog > last {
            growingRounds += 1
        } else {
            growingRounds = 0
        }
        lastBacklog = backlog
        if slowReason == nil && growingRounds >= 3 {
            slowReason = "catch-up lag is growing (\(backlog) changes behind)"
            slowCause = .lagGrowing
        }
        if let slowReason {
            healthyRounds = 0
            cause = slowCause
            if chunkRows > minChunk {
                chunkRows = max(minChunk, chunkRows / 2)
                reason = "halving chunks: " + slowReason
            } else if pausedRounds < maxPausedRounds {
                // Already at the smallest chunk and still hurting: stop copying for a while.
                pausedRounds += 1
                guard copying else {
                    reason = "slowest pace: " + slowReason
                    return minimumPace(lastChunkMicros: lastChunkMicros)
                }
                reason = "paused: " + slowReason
                return Decision(chunkRows: 0, delayMillis: 1_000, reason: reason, maxChunks: 0)
            } else if latencyHurts, let p99 = foregroundP99Micros {
                // Paused long enough for the p99 window to hold no copy work, and the foreground
                // is still slow: the copy is not the cause. What the foreground does without it
                // becomes the reference, so the copy resumes and is judged against that.
                pausedRounds = 0
                baselineP99Micros = max(1, p99)
                cause = .foregroundLatency
                reason = "re-baselined at \(Self.millis(p99)) ms: pausing the copy did not bring the foreground p99 down"
            } else {
                pausedRounds = 0
                reason = "minimum chunks to keep progressing: " + slowReason
            }
        } else {
            pausedRounds = 0
            healthyRounds += 1
            if healthyRounds >= 5 && chunkRows < maxChunk {
                chunkRows = min(maxChunk, chunkRows * 2)
                healthyRounds = 0
            }
            if chunkRows == maxChunk {
                reason = nil
                cause = nil
            }
        }
        var delay: UInt64 = 0
        if chunkRows < maxChunk, let last = lastChunkMicros {
            delay = Self.rest(after: last, chunk: chunkRows, of: maxChunk)
        }
        let ceiling = copying ? maxRowsPerSecond : nil
        var rows = chunkRows
        if let ceiling {
            // A second's budget at most per round, shared by the chunks side by side, and
            // between the starts of two rounds the time the last one's rows are worth at the
            // ceiling (the round about to start runs within that time; counting the last
            // round's own duration against it too went 7-11 % over the ceiling).
            rows = min(rows, max(1, ceiling / parallelism))
            if let copied = lastChunkRows {
                delay = max(delay, UInt64(max(0, copied)) * 1_000 / UInt64(ceiling))
            }
            if reason == nil {
                reason = "rate limit \(ceiling) rows/s"
                cause = .rateLimit
            }
        }
        return Decision(chunkRows: rows, delayMillis: delay, reason: reason, maxChunks: chunkRows < maxChunk ? 1 : nil)
    }

    /// The slowest pace that still progresses: one minimum chunk, then the rest `decide` gives
    /// a minimum chunk. For work that must not stop for the foreground's noise, only go
    /// gently (cleanup of moved rows: a pause there buys nothing but a longer migration; the
    /// rows/s ceiling is a copy ceiling and does not apply).
    public func minimumPace(lastChunkMicros: UInt64?) -> Decision {
        let rest = lastChunkMicros.map { Self.rest(after: $0, chunk: minChunk, of: maxChunk) } ?? 0
        return Decision(chunkRows: minChunk, delayMillis: rest, reason: reason, maxChunks: 1)
    }

    /// The rest after a chunk that took `micros`, in milliseconds: one chunk's time per halving
    /// of the chunk below `maxChunk`. (Resting in proportion to the size ratio instead starved
    /// the work: a small chunk's round is mostly fixed costs, so the rows moved fell with the
    /// square of the chunk size.)
    static func rest(after micros: UInt64, chunk: Int, of maxChunk: Int) -> UInt64 {
        var halvings: UInt64 = 0
        var size = maxChunk
        while size > max(1, chunk) {
            size /= 2
            halvings += 1
        }
        return micros * halvings / 1_000
    }

    private static func millis(_ micros: UInt64) -> String {
        String(Double(micros / 10) / 100)
    }
}
