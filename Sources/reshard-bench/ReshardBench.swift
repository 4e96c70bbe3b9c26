import ArgumentParser
import Foundation

/// Reshard's benchmarks, a program of their own so that the shipped `reshard` carries none of
/// their code or dependencies.
@main
struct ReshardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reshard-bench",
        abstract: "Run Reshard's benchmarks; each prints a Markdown table and writes JSON to benchmarks/results/.",
        discussion: """
            Without a scenario name, runs them all (`reshard-bench --quick` for a short run) and ends with every target and its measured ratio. PostgreSQL figures need servers: RESHARD_PG_1 and RESHARD_PG_2 in the environment, or scripts/postgres in the working directory (the benchmark then starts two servers and stops them at the end). See BENCHMARKS.md.

            Example:
              swift run -c release reshard-bench --quick
              swift run -c release reshard-bench router --backend sqlite
              swift run -c release reshard-bench copy --rows 1000000
              swift run -c release reshard-bench strategies --quick
            """,
        subcommands: [
            BenchAll.self, RouterBench.self, CopyBench.self, CutoverBench.self, LatencyBench.self, PlacementBench.self, VerifyBench.self,
            SimulationBench.self, StrategyBench.self, HotspotBench.self, ScaleBench.self,
        ],
        defaultSubcommand: BenchAll.self
    )
}

/// Every scenario in one run, on every backend at hand, then the targets table.
struct BenchAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Every scenario (router, copy, cutover, strategies, latency, placement) and the table of targets.",
        discussion: """
            Example:
              swift run -c release reshard-bench --quick
            """
    )

    @OptionGroup var options: BenchOptions

    func run() async throws {
        let started = ContinuousClock.now
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        let quick = options.quick
        var checks: [TargetCheck] = []
        var failures: [String: String] = [:]
        var written: [String] = []

        func scenario(_ name: String, _ measure: () async throws -> any BenchResult) async {
            say("\n## \(name)\n")
            let start = ContinuousClock.now
            do {
                let result = try await measure()
                let file = try result.write(to: options.out)
                say(result.markdown)
                say(String(format: "\n(%@ took %.0f s; wrote %@)", name as NSString, seconds(since: start), file as NSString))
                checks += result.checks
                written.append(file)
            } catch {
                say("\(name) FAILED: \(error)")
                failures[name] = "\(error)"
            }
        }

        await scenario("placement") { try PlacementBench.measure(rows: quick ? 200_000 : 1_000_000) }
        await scenario("router") {
            try await RouterBench.measure(environment: environment, levels: [1, 16, 64], requests: quick ? 5_000 : 20_000, rows: 10_000)
        }
        await scenario("copy") { try await CopyBench.measure(environment: environment, rows: 1_000_000, quick: quick) }
        await scenario("cutover") { try await CutoverBench.measure(environment: environment, cutovers: quick ? 20 : 40, rate: 1_000) }
        await scenario("strategies") {
            try await StrategyBench.measure(
                environment: environment, rows: quick ? 40_000 : 200_000, rate: 500, settle: quick ? 2 : 5)
        }
        await scenario("latency") {
            try await LatencyBench.measure(
                environment: environment, rows: quick ? 50_000 : 300_000, rate: 600, settle: quick ? 3 : 8, out: options.out)
        }
        await scenario("hotspot") { try await HotspotBench.measure(environment: environment, keys: 20_000, rate: 1_500) }
        // Last: its 256,000-range maps leave the process's resident memory half a gigabyte up,
        // which would hide the copy scenario's peak-memory comparison.
        await scenario("scale") { try await ScaleBench.measure(environment: environment, shards: 1_000, rows: 1_000_000_000, quick: quick) }

        let summary = BenchSummary(
            date: Self.now(), quick: quick, seconds: seconds(since: started), backends: environment.backends.map(\.rawValue),
            skipped: environment.skipped, checks: checks, failures: failures, files: written)
        say("\n## targets\n")
        say(TargetCheck.markdown(checks))
        say(
            String(
                format: "\n%d of %d targets met; %d scenario(s) failed; %.0f s in all", checks.filter(\.met).count, checks.count,
                failures.count, summary.seconds))
        say("wrote \(try BenchResultFile.write(summary, name: "summary", date: summary.date, to: options.out))")
        if !failures.isEmpty { throw ExitCode.failure }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}

/// What `reshard-bench` (all scenarios) measured against the targets.
struct BenchSummary: Codable, Sendable {
    var benchmark = "summary"
    let date: String
    let quick: Bool
    let seconds: Double
    let backends: [String]
    let skipped: String?
    let checks: [TargetCheck]
    /// Scenarios that could not finish, with their error.
    let failures: [String: String]
    let files: [String]
}
