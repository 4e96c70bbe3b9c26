import ArgumentParser
import Foundation
import ReshardTestKit

/// The seeded simulation's soak: thousands of seeds of every scenario, the production migrator
/// over in-memory shards, all cores busy. It asserts the invariants as the test suite does (a
/// failure prints its seed, and `RESHARD_SIM_SEED=N swift test --filter MigrationSimulationTests`
/// replays it) and reports how long the soak took against its five-minute target.
struct SimulationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the seeded simulation for many seeds of every scenario (default 10,000 each).",
        discussion: """
            Example:
              swift run -c release reshard-bench simulate
              swift run -c release reshard-bench simulate --seeds 500 --scenario canaryHalt
            """
    )

    @Option(help: "Seeds per scenario (1 … N).")
    var seeds = 10_000

    @Option(
        help:
            "Only this scenario (addShard, removeShard, moveRange, rebalance, rollbackBeforeSwitch, rollbackDuringBake, gated, canaryHalt, pauseResume)."
    )
    var scenario: String?

    @Option(help: "Runs side by side (default: the number of cores).")
    var parallelism = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Where the JSON results go.")
    var out = "benchmarks/results"

    func validate() throws {
        guard (1...10_000_000).contains(seeds) else { throw ValidationError("--seeds must be 1…10000000") }
        guard (1...256).contains(parallelism) else { throw ValidationError("--parallelism must be 1…256") }
        if let scenario, SimulationRun.Scenario(rawValue: scenario) == nil {
            throw ValidationError("unknown scenario \(scenario)")
        }
    }

    func run() async throws {
        let report = try await Self.measure(
            seeds: seeds, scenarios: scenario.flatMap(SimulationRun.Scenario.init).map { [$0] } ?? SimulationRun.Scenario.allCases,
            parallelism: parallelism)
        try report.present(out: out)
        if report.failures > 0 { throw ExitCode.failure }
    }

    static func measure(seeds: Int, scenarios: [SimulationRun.Scenario], parallelism: Int) async throws -> SimulationReport {
        let started = ContinuousClock.now
        var rows: [SimulationReport.Row] = []
        var failures: [String] = []
        for scenario in scenarios {
            let start = ContinuousClock.now
            let totals = await SimulationSoak.run(scenario, seeds: (1...UInt64(seeds)).map { $0 }, parallelism: parallelism)
            let coverage = totals.outcome.coverage
            let row = SimulationReport.Row(
                scenario: scenario.rawValue, seeds: totals.runs, failures: totals.failures.count, seconds: seconds(since: start),
                rounds: totals.outcome.rounds, ackedWrites: coverage.ackedWrites, reads: coverage.reads,
                fencedWrites: coverage.fencedWrites,
                crashes: coverage.crashes, injectedFailures: coverage.injectedFailures, shadowReads: coverage.shadowReads,
                interleavedOps: coverage.interleavedOps)
            say(
                "\(scenario): \(grouped(row.seeds)) seeds in \(String(format: "%.1f", row.seconds)) s, \(row.failures) failed, "
                    + "\(grouped(row.crashes)) crashes")
            for failure in totals.failures.prefix(5) { say("  \(failure)") }
            failures += totals.failures
            rows.append(row)
        }
        let total = seconds(since: started)
        let check = TargetCheck.below(
            "simulation soak, \(grouped(seeds)) seeds of every scenario (s)", "core", total, 300, unit: "s",
            detail:
                "\(grouped(rows.reduce(0) { $0 + $1.seeds })) runs, \(parallelism) at a time on "
                + "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(failures.count) failed")
        return SimulationReport(
            date: ISO8601DateFormatter().string(from: Date()), seedsPerScenario: seeds, parallelism: parallelism, seconds: total,
            rows: rows,
            failures: failures.count, firstFailures: Array(failures.prefix(20)), checks: [check])
    }
}

/// What a soak did, scenario by scenario.
struct SimulationReport: BenchResult, Codable {
    struct Row: Codable, Sendable {
        let scenario: String
        let seeds: Int
        let failures: Int
        let seconds: Double
        let rounds: Int
        let ackedWrites: Int
        let reads: Int
        let fencedWrites: Int
        let crashes: Int
        let injectedFailures: Int
        let shadowReads: Int
        let interleavedOps: Int
    }

    var benchmark = "simulation"
    let date: String
    let seedsPerScenario: Int
    let parallelism: Int
    let seconds: Double
    let rows: [Row]
    let failures: Int
    let firstFailures: [String]
    let checks: [TargetCheck]

    var markdown: String {
        var lines = [
            "| scenario | seeds | failed | seconds | rounds | acked writes | reads | fenced writes | crashes | injected failures | shadow reads |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows {
            lines.append(
                "| \(row.scenario) | \(grouped(row.seeds)) | \(row.failures) | \(String(format: "%.1f", row.seconds)) | "
                    + "\(grouped(row.rounds)) | \(grouped(row.ackedWrites)) | \(grouped(row.reads)) | \(grouped(row.fencedWrites)) | "
                    + "\(grouped(row.crashes)) | \(grouped(row.injectedFailures)) | \(grouped(row.shadowReads)) |")
        }
        return lines.joined(separator: "\n") + "\n\n" + TargetCheck.markdown(checks)
    }

    func write(to folder: String) throws -> String { try BenchResultFile.write(self, name: benchmark, date: date, to: folder) }
}
