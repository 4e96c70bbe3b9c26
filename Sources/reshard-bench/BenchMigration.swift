import ArgumentParser
import Foundation
import ReshardCore
import ReshardEngine
import ReshardTestKit

/// Runs one migration to its end for a benchmark, showing progress on long ones.
enum BenchMigration {
    /// One phase's span, wall milliseconds.
    struct Span: Codable, Sendable {
        let phase: String
        let startMillis: UInt64
        let endMillis: UInt64

        var seconds: Double { Double(endMillis - min(endMillis, startMillis)) / 1_000 }
    }

    /// A finished migration: its last status, and every distinct reason the throttle gave.
    struct Outcome: Sendable {
        let status: MigrationStatus
        let throttleReasons: [String]
    }

    /// Creates the migration, polls it until it is done, and returns its last status; a
    /// migration that fails or runs past `timeout` is an error (the figures would mean nothing).
    static func run(
        _ manager: MigrationManager, _ kind: MigrationKind, settings: MigrationSettings, label: String, showProgress: Bool,
        timeout: Duration = .seconds(900)
    ) async throws -> Outcome {
        let (created, _) = try await manager.create(MigrationRequest(kind: kind, settings: settings))
        guard let id = created else { throw BenchError("\(label): the migration was not created") }
        let started = ContinuousClock.now
        var lastLine = started
        var reasons: [String] = []
        while true {
            guard let status = await manager.status(id) else { throw BenchError("\(label): migration \(id) vanished") }
            let machine = status.machine
            if let reason = status.throttleReason { noteThrottleReason(reason, in: &reasons) }
            if machine.phase == .done { return Outcome(status: status, throttleReasons: reasons) }
            if machine.phase == .failed || machine.phase.isTerminal {
                throw BenchError("\(label): migration ended \(machine.phase.rawValue): \(status.error ?? "no reason")")
            }
            let now = ContinuousClock.now
            guard now - started < timeout else { throw BenchError("\(label): migration still \(machine.phase.rawValue) after \(timeout)") }
            if showProgress && now - lastLine >= .seconds(2) {
                let estimated = machine.estimatedRows.map { " of \(grouped($0))" } ?? ""
                say("  \(label): \(machine.phase.rawValue), \(grouped(machine.rowsCopied))\(estimated) rows copied")
                lastLine = now
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The phases the machine went through, each with its start and end (the last ends at `now`).
    static func spans(_ machine: MigrationStateMachine, now: UInt64) -> [Span] {
        let log = machine.phaseLog
        return log.indices.map { index in
            Span(phase: log[index].phase.rawValue, startMillis: log[index].at, endMillis: index + 1 < log.count ? log[index + 1].at : now)
        }
    }

    /// Settings for benchmark moves: no canary steps or bake to wait through, tombstones purged
    /// at once; the throttle's latency signal on (`factor`) or off (nil).
    static func settings(latencyFactor: Double?) -> MigrationSettings {
        MigrationSettings(bakeMillis: 0, latencyFactor: latencyFactor, tombstoneGraceMillis: 0, canarySteps: [], canaryStepMillis: 0)
    }
}

/// A migration run under client load: the load's samples, when it started, and the
/// migration's begin and end on the same wall clock.
struct LoadedMigration: Sendable {
    let samples: [BenchLoad.Sample]
    let origin: UInt64
    let begin: UInt64
    let end: UInt64
    let outcome: BenchMigration.Outcome
}

extension BenchMigration {
    /// Serves `cluster` over HTTP, runs `clients` clients at `rate` requests/s (30 % writes) over
    /// `keys` keys, lets them settle, runs `kind` with `settings` to its end, lets them settle
    /// again, and stops: what the latency and strategy benchmarks measure a migration under.
    /// `onLoad` runs once the clients have started (a benchmark resets its memory peak there).
    static func underLoad(
        _ cluster: ScratchCluster, _ manager: MigrationManager, _ kind: MigrationKind, settings: MigrationSettings, keys: Int,
        rate: Int, settle: Duration, label: String, onLoad: () -> Void = {}
    ) async throws -> LoadedMigration {
        let server = try await LoopbackServer.reshard(cluster, migrations: manager)
        let load = BenchLoad(port: server.port, table: benchTable, clients: 4, keys: keys, ratePerSecond: rate, writePercent: 30)
        let loadTask = Task { try await load.run() }
        onLoad()
        var outcome: Outcome?
        var failure: (any Error)?
        var (begin, end): (UInt64, UInt64) = (0, 0)
        do {
            try await Task.sleep(for: settle)
            begin = wallMillis()
            outcome = try await run(manager, kind, settings: settings, label: label, showProgress: true)
            // The end is when the machine reached done, not when the poll noticed.
            end = outcome?.status.machine.phaseLog.last { $0.phase == .done }?.at ?? wallMillis()
            try await Task.sleep(for: settle)
        } catch {
            failure = error
        }
        load.stop()
        let samples = try await loadTask.value
        await server.stop()
        if let failure { throw failure }
        guard let outcome else { throw BenchError("no migration status") }
        return LoadedMigration(
            samples: samples, origin: load.startedAtWallMillis.withLock { $0 }, begin: begin, end: end, outcome: outcome)
    }
}

/// Wall-clock milliseconds, the unit of the migration journal's phase log.
func wallMillis() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1_000) }

/// Keeps one entry per kind of throttle action (halving, pausing, re-baselining), with the
/// first reason given for it: what a report needs, without every round's figures.
func noteThrottleReason(_ reason: String, in reasons: inout [String]) {
    let kind = reason.split(separator: ":").first.map(String.init) ?? reason
    if !reasons.contains(where: { $0.hasPrefix(kind) }) { reasons.append(reason) }
}

/// The load a migration benchmark runs under; each scenario has its own defaults (its help).
struct MigrationLoadOptions: ParsableArguments {
    @Option(help: "Rows on the four shards before the add (default: the scenario's, fewer with --quick).")
    var rows: Int?

    @Option(help: "Client requests per second, 70 % reads and 30 % writes (default: the scenario's).")
    var rate: Int?

    @Option(help: "Seconds of load before the migration and after it (default: the scenario's, fewer with --quick).")
    var settleSeconds: Int?

    func validate() throws {
        if let rows, !(1_000...10_000_000).contains(rows) { throw ValidationError("--rows must be 1,000…10,000,000") }
        if let rate, !(10...20_000).contains(rate) { throw ValidationError("--rate must be 10…20,000") }
        if let settleSeconds, !(1...600).contains(settleSeconds) { throw ValidationError("--settle-seconds must be 1…600") }
    }
}
