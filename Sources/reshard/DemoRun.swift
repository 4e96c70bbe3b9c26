import Foundation
import ReshardCore
import ReshardEngine
import ReshardStore

/// The demo's migration: a baseline, shard s5 added live with progress shown, then a settle
/// period, all while the workload runs.
struct DemoRun: Sendable {
    let router: ShardRouter
    let migrations: MigrationManager
    let workload: DemoWorkload
    let settle: Duration
    let newShardLocation: @Sendable (ShardID) -> ShardLocation

    /// What the migration did, for the report.
    struct Result: Sendable, Codable {
        var id = ""
        /// `add_shard` or `change_shard_key`.
        var kind = "add_shard"
        var phase = ""
        var strategy = MigrationStrategy.cdcBackfill.rawValue
        /// `dual_write`'s second writes the new owner took.
        var secondWrites = 0
        /// `traffic_replay`'s writes recorded, and replayed on the new owner.
        var recordedWrites = 0
        var replayedWrites = 0
        var error: String?
        /// Rows (tombstones included) on the four shards when the migration was planned.
        var rowsAtStart = 0
        var rowsPredicted = 0
        var rowsCopied = 0
        var copyRowsPerSecond = 0.0
        var moves = 0
        var seconds = 0.0
        /// Seconds spent in each phase, in order.
        var phases: [Phase] = []
        var cutoverAttempts = 0
        /// How long writes were held at each completed cutover, milliseconds.
        var holdMillis: [UInt64] = []
        /// Per cutover: the pauses of the writes that arrived while it held them.
        var pauses: [PauseSummary] = []
        /// The steps of the last cutover and their durations.
        var cutoverSteps: [CutoverStepTiming] = []
        var rowsDeleted = 0
        var tombstonesPurged = 0
        var throttleReasons: [String] = []
        /// The last verification: rows compared, sub-ranges, differences repaired, milliseconds.
        var verifiedRows = 0
        var verifiedSubranges = 0
        var differingSubranges = 0
        var repaired = 0
        var verifyMillis = 0.0
        /// The canary's shadow reads: total, matches, lag, real mismatches, latency delta p99 (µs).
        var shadowReads = 0
        var shadowMatches = 0
        var shadowLag = 0
        var shadowMismatches = 0
        var shadowDeltaP99Micros: Int64?
        var canarySteps: [Double] = []

        struct Phase: Sendable, Codable {
            let name: String
            let seconds: Double
        }
    }

    func migrate(bakeMillis: UInt64, strategy: MigrationStrategy?, changeShardKey: Bool = false) async throws -> Result {
        try await wait(settle, label: "baseline")
        if !changeShardKey { _ = try await router.addShard(id: "s5", location: newShardLocation) }
        var result = Result()
        for shard in router.shardMap.shards {
            result.rowsAtStart += try await router.store(shard)?.summary(table: try Self.table, range: .full).rows ?? 0
        }
        workload.stage.withLock { $0 = .during }
        let settings = MigrationSettings(bakeMillis: bakeMillis, tombstoneGraceMillis: 0, canaryStepMillis: 500, strategy: strategy)
        let kind: MigrationKind = changeShardKey ? .changeShardKey(try Self.table, field: Self.newShardKey) : .addShard(try Self.newShard)
        let (created, preview) = try await migrations.create(MigrationRequest(kind: kind, settings: settings))
        guard let id = created else { throw DemoError("the migration was not created") }
        result.id = id
        result.kind = kind.name
        result.rowsPredicted = preview.rows
        result.moves = preview.plan.moves.count
        if let layout = preview.layout {
            say(
                "changing the shard key of \(Self.tableName) from id to \(Self.newShardKey) live (migration \(id)): "
                    + "\(Demo.count(layout.rows)) live rows re-placed, "
                    + String(format: "largest shard %.2f× the mean under the new key", layout.imbalance))
        } else {
            let share = Double(preview.rows) / Double(max(1, result.rowsAtStart)) * 100
            say(
                "adding shard s5 live (migration \(id)): \(preview.plan.moves.count) ranges, \(Demo.count(preview.rows)) rows to move "
                    + String(format: "(%.1f %% of %@; ideal 20.0 %%)", share, Demo.count(result.rowsAtStart) as NSString))
        }
        try await follow(id, into: &result)
        workload.stage.withLock { $0 = .after }
        try await wait(settle, label: "after")
        return result
    }

    /// The demo's table and the shard it adds; validated like any name, never force-unwrapped.
    static let tableName = "accounts"
    static var table: TableName { get throws { try TableName(tableName).orThrow("table name") } }
    static var newShard: ShardID { get throws { try ShardID("s5").orThrow("shard id") } }
    /// The field `--change-shard-key` places the table by.
    static let newShardKey = "customer"

    /// Shows the migration until it ends (or fails), recording phase times and figures.
    private func follow(_ id: String, into result: inout Result) async throws {
        let started = ContinuousClock.now
        var reported = 0  // phase-log entries already shown as finished
        let display = ProgressDisplay()
        while true {
            guard let status = await migrations.status(id) else { throw DemoError("migration \(id) vanished") }
            let machine = status.machine
            let now = ContinuousClock.now
            // The machine logs every phase it entered, so even phases shorter than one poll show.
            let log = machine.phaseLog
            while reported + 1 < log.count {
                let (entry, next) = (log[reported], log[reported + 1])
                let seconds = Double(next.at - min(next.at, entry.at)) / 1_000
                result.phases.append(.init(name: entry.phase.rawValue, seconds: seconds))
                display.finish(String(format: "  %-12@ %6.2f s", entry.phase.rawValue as NSString, seconds))
                reported += 1
            }
            if let reason = status.throttleReason { noteThrottleReason(reason, in: &result.throttleReasons) }
            let wallNow = wallMillis()
            // Copying runs from its log entry to the next one (or to now, while it lasts).
            let copyIndex = log.firstIndex { $0.phase == .copying }
            let copyEnd = copyIndex.flatMap { $0 + 1 < log.count ? log[$0 + 1].at : nil } ?? wallNow
            let copySeconds = copyIndex.map { Double(copyEnd - min(copyEnd, log[$0].at)) / 1_000 } ?? 0
            let rate = copySeconds > 0 ? Double(machine.rowsCopied) / copySeconds : 0
            var line = ProgressLine.render(
                phase: machine.phase.rawValue, copied: machine.rowsCopied, estimated: machine.estimatedRows, rate: rate)
            let lag = machine.forward.values.map { $0.backlog == .max ? 0 : $0.backlog }.max() ?? 0
            line += " lag \(lag)"
            if let p99 = workload.takeWindowP99() { line += String(format: " · clients p99 %.1f ms", Double(p99) / 1_000) }
            if let reason = status.throttleReason { line += " · throttle: \(reason)" }
            display.update("  " + line, state: machine.phase.rawValue)
            if machine.phase.isTerminal || machine.phase == .failed {
                result.phase = machine.phase.rawValue
                result.strategy = machine.settings.strategyInForce.rawValue
                result.secondWrites = status.secondWrites?.written ?? 0
                result.recordedWrites = status.secondWrites?.recorded ?? 0
                result.replayedWrites = machine.replayed?.applied ?? 0
                result.error = status.error
                result.seconds = (now - started).seconds
                result.copyRowsPerSecond = rate
                result.rowsCopied = machine.rowsCopied
                result.cutoverAttempts = machine.cutoverAttempts
                result.holdMillis = machine.pausesMillis
                result.pauses = status.pauses
                result.cutoverSteps = status.cutoverSteps
                result.rowsDeleted = machine.deletions.reduce(0) { $0 + $1.rows }
                result.tombstonesPurged = machine.purges.reduce(0) { $0 + $1.rows }
                if let report = machine.verification {
                    result.verifiedRows = report.rowsCompared
                    result.verifiedSubranges = report.moves.reduce(0) { $0 + $1.subranges }
                    result.differingSubranges = report.moves.reduce(0) { $0 + $1.mismatchedSubranges }
                    result.repaired = report.repaired
                    result.verifyMillis = Double(report.micros) / 1_000
                }
                result.canarySteps = machine.settings.canarySteps
                if let shadow = status.shadow {
                    result.shadowReads = shadow.reads
                    result.shadowMatches = shadow.matches
                    result.shadowLag = shadow.lag
                    result.shadowMismatches = shadow.mismatches
                    result.shadowDeltaP99Micros = shadow.latencyDeltaP99Micros
                }
                display.finish("  \(machine.phase.rawValue)" + (status.error.map { ": \($0)" } ?? ""))
                return
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Lets the workload run for `duration`, then prints its p99 over that time.
    private func wait(_ duration: Duration, label: String) async throws {
        _ = workload.takeWindowP99()
        try await Task.sleep(for: duration)
        let p99 = workload.takeWindowP99().map { String(format: "%.2f ms", Double($0) / 1_000) } ?? "no requests"
        say("  \(label): \(Int(duration.seconds)) s of workload, clients p99 \(p99)")
    }
}

/// Writes a line to standard output at once: the demo's progress must show as it happens also
/// when the output goes to a file or a pipe, where `print` would buffer it.
func say(_ text: String = "") {
    emit(text + "\n")
}

struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Optional {
    func orThrow(_ what: String) throws -> Wrapped {
        guard let self else { throw DemoError("invalid \(what)") }
        return self
    }
}
