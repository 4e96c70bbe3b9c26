/// How fast a migration goes and how it retries, from the figures of this process's latest
/// rounds (wall milliseconds throughout). Not progress: a restart starts it afresh, and the
/// journal's durable projection leaves it out.
public struct MigrationPacing: Hashable, Sendable, Codable {
    /// The copy throttle (chunk size, why it slows down).
    public internal(set) var throttle: Throttle
    /// Consecutive rounds with a failed work item.
    public internal(set) var failures = 0
    /// The latest failure's text, until a round succeeds.
    public internal(set) var lastError: String?
    /// No work before this time: a failed round's backoff.
    var retryAt: UInt64?
    /// No bulk work (copy or cleanup chunks) before this time: the throttle's rest.
    var bulkNotBefore: UInt64 = 0
    /// When each old owner's changelog was last read while copying.
    var lastTail: [ShardID: UInt64] = [:]
    /// When the routers' shadow reads were last checked.
    var shadowCheckedAt: UInt64?
    /// The retry queue of failed second writes, as this process last read it.
    public internal(set) var secondWrites = SecondWriteRetries()
    /// Recorded writes waiting to be replayed, as the last replay read them (nil: not read since
    /// catching up began, or since this process started).
    public internal(set) var replayWaiting: Int?
    /// Whether the round in flight runs bulk work (its figures feed the throttle).
    var bulkRound = false
    /// How long the latest bulk round took, and the rows its copy chunks copied.
    var lastBulkMicros: UInt64?
    var lastBulkRows: Int?

    /// Rounds with a failed item in a row that fail the migration (each step is idempotent and
    /// the journal holds what completed, so its state stays consistent).
    public static let maxFailures = 5
    /// Second writes retried per pass over the queue.
    public static let secondWriteRetryBatch = 500
    /// Recorded writes replayed per work item.
    public static let replayBatch = 1_000
    /// Failed passes over the retry queue in a row after which its entries are flagged for
    /// reconciliation (the changelog still carries them, and verification proves the result).
    public static let secondWriteReconcileAfter = 5
    /// While copying, an old owner with nothing waiting is read this often, not every round: a
    /// read that finds nothing only costs the shard (on PostgreSQL each starts a WAL decoding).
    static let idleTailMillis: UInt64 = 250
    /// Other routers' shadow reads are read this often during a canary step (and at its end).
    static let shadowCheckMillis: UInt64 = 1_000
    /// How long a mode shown to routers takes to reach every one: routers following the
    /// metadata re-read the directive every second, so two seconds spans two re-reads.
    public static let routerFollowMillis: UInt64 = 2_000
    /// A round that only changed what a restart learns again is journaled at most this often.
    public static let relearnedJournalMillis: UInt64 = 1_000
    /// A round the throttle holds back rests at most this long before tailing again.
    static let restMillis: UInt64 = 100

    /// Pacing for a migration with `settings`.
    public init(settings: MigrationSettings) {
        throttle = Throttle(
            maxRowsPerSecond: settings.maxRowsPerSecond, latencyFactor: settings.latencyFactor, maxChunk: settings.chunkRows,
            minChunk: max(1, min(50, settings.chunkRows)), parallelism: settings.copyParallelism)
    }

    /// The backoff after `failures` failed rounds in a row: 200 ms, doubling.
    static func backoffMillis(failures: Int) -> UInt64 { 100 << UInt64(min(max(1, failures), 10)) }

    /// Copy and cleanup chunks: the bulk work the throttle paces.
    static func isBulk(_ work: MigrationWork) -> Bool {
        switch work {
        case .copyChunk, .deleteChunk, .clearTable: true
        default: false
        }
    }

    /// Applies the throttle to a round of copying or cleaning up: smaller chunks, or none this
    /// round while the throttle holds the bulk work back (the round then rests a little, so the
    /// tails that keep running add nothing the throttle would measure as foreground slowness).
    /// Changelog tails run every round regardless, so holding the copy back never lets
    /// catch-up lag build up. Cleanup deletes are throttled like copies, except that they never
    /// stop and the rows/s ceiling (a copy ceiling) does not pace them: deleting a chunk of a
    /// range holds the shard's writer as long as writing one (on SQLite a 1,000-row delete
    /// stalled client writes for 50 ms or more).
    mutating func pace(
        _ work: [MigrationWork], now: UInt64, foregroundP99Micros: UInt64?, forward: [ShardID: StreamProgress], copying: Bool
    ) -> [MigrationWork] {
        if throttle.baselineP99Micros == nil, let baseline = foregroundP99Micros { throttle.setBaseline(p99Micros: baseline) }
        var limit = 0
        var chunksLeft = 0
        if now >= bulkNotBefore {
            // Catch-up lag is a copying signal: the streams stop before cleanup.
            let backlog = copying ? forward.values.map { $0.backlog == .max ? 0 : $0.backlog }.max() ?? 0 : 0
            let decision = throttle.decide(
                foregroundP99Micros: foregroundP99Micros, backlog: backlog, lastChunkMicros: lastBulkMicros, lastChunkRows: lastBulkRows,
                copying: copying)
            limit = decision.chunkRows
            chunksLeft = decision.maxChunks ?? Int.max
            bulkNotBefore = now.adding(saturating: decision.delayMillis)
        }
        var paced: [MigrationWork] = []
        for item in work {
            switch item {
            case .tail(.forward, let shard, _, nil) where copying:
                let waiting = forward[shard].map { $0.backlog > 0 } ?? true
                if !waiting, let last = lastTail[shard], now < last.adding(saturating: Self.idleTailMillis) { continue }
                lastTail[shard] = now
                paced.append(item)
            case .copyChunk(let task, let move, let table, let after, _):
                guard limit > 0, chunksLeft > 0 else { continue }
                chunksLeft -= 1
                paced.append(.copyChunk(task: task, move: move, table: table, after: after, limit: limit))
            case .deleteChunk(let task, let shard, let range, let rows):
                guard limit > 0, chunksLeft > 0 else { continue }
                chunksLeft -= 1
                // Cleanup chunks have their own size: the throttle's share of its full chunk.
                paced.append(.deleteChunk(task: task, shard: shard, range: range, limit: max(1, rows * limit / max(1, throttle.maxChunk))))
            case .clearTable(let task, let shard, let table, let rows):
                guard limit > 0, chunksLeft > 0 else { continue }
                chunksLeft -= 1
                paced.append(.clearTable(task: task, shard: shard, table: table, limit: max(1, rows * limit / max(1, throttle.maxChunk))))
            default:
                paced.append(item)
            }
        }
        if limit == 0 {
            // A rest that ends sooner is waited out to its end only, so a rows/s ceiling is reached.
            let rest = now.adding(saturating: Self.restMillis)
            paced.append(.waitUntil(now < bulkNotBefore ? min(rest, bulkNotBefore) : rest))
        }
        bulkRound = paced.contains(where: Self.isBulk)
        return paced
    }

    /// Records what a bulk round did, for the throttle's next decision.
    mutating func recordBulk(_ events: [MigrationEvent], micros: UInt64) {
        guard bulkRound else { return }
        lastBulkMicros = micros
        lastBulkRows = events.reduce(0) { sum, event in
            if case .chunkCopied(_, _, let rows, _, _) = event { return sum + rows }
            return sum
        }
    }
}

/// The migrator's retries of failed second writes (`dual_write`): the queue is durable in the
/// metadata store, so these are figures of this process's passes over it, paced: about once a
/// second while nothing waits, at once while a pass leaves entries and succeeds, with a doubling
/// backoff (up to 30 s) while passes fail.
public struct SecondWriteRetries: Hashable, Sendable, Codable {
    /// Entries the queue held after the last pass.
    public internal(set) var waiting = 0
    /// Second writes this process retried.
    public internal(set) var retried = 0
    /// Failed passes in a row.
    public internal(set) var failedPasses = 0
    /// Why the last pass stopped, while passes fail.
    public internal(set) var lastError: String?
    /// No pass before this time.
    var nextAt: UInt64 = 0

    /// Nothing read yet.
    public init() {}

    /// Whether the queue's entries wait for reconciliation: retries have failed too often.
    public var needsReconciliation: Bool { waiting > 0 && failedPasses >= MigrationPacing.secondWriteReconcileAfter }

    /// Records a pass at `now`.
    mutating func record(applied: Int, waiting: Int, error: String?, now: UInt64) {
        retried += applied
        self.waiting = waiting
        lastError = error
        if error != nil {
            failedPasses += 1
            nextAt = now.adding(saturating: min(30_000, 250 << UInt64(min(failedPasses, 7))))
        } else {
            failedPasses = 0
            nextAt = waiting > 0 ? now : now.adding(saturating: 1_000)
        }
    }
}
