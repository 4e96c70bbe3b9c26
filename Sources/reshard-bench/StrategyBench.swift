import ArgumentParser
import Foundation
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// Every available strategy on the same data and the same load: a live add of s5 to four
/// shards while clients read and write through the router, one fresh cluster per strategy. Side
/// by side: how long it took, the clients' p99 before, during and after, the write pause, rows
/// copied, the extra writes the strategy made (second writes, recorded and replayed writes), and
/// the reads the new owner answered as the canary's shadow, served alone in read steps, and the
/// reads an old owner still answered after a switch that came first.
struct StrategyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategies",
        abstract: "Each migration strategy adding a shard under the same load, side by side.",
        discussion: """
            Defaults: 200,000 rows (40,000 with --quick), 500 requests/s, 5 s of settling (2 with --quick).

            Example:
              swift run -c release reshard-bench strategies --quick
              swift run -c release reshard-bench strategies --backend sqlite --rows 200000
            """
    )

    @OptionGroup var options: BenchOptions

    @OptionGroup var load: MigrationLoadOptions

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(
            environment: environment, rows: load.rows ?? (options.quick ? 40_000 : 200_000), rate: load.rate ?? 500,
            settle: load.settleSeconds ?? (options.quick ? 2 : 5)
        ).present(out: options.out)
    }

    static func measure(environment: BenchEnvironment, rows: Int, rate: Int, settle: Int) async throws -> BenchFile<StrategyReport> {
        try await BenchFile.measure("strategies", environment) { backend in
            var runs: [StrategyReport.Run] = []
            for strategy in MigrationStrategy.allCases where strategy.isAvailable {
                let scenario = StrategyScenario(
                    backend: backend, servers: environment.servers, strategy: strategy, rows: rows, rate: rate, settle: .seconds(settle))
                runs.append(try await scenario.measure())
            }
            let unavailable = MigrationStrategy.allCases.filter { !$0.isAvailable }.map(\.rawValue)
            return StrategyReport(backend: backend.rawValue, rows: rows, rate: rate, runs: runs, unavailable: unavailable)
        }
    }
}

struct StrategyScenario {
    let backend: ShardBackend
    let servers: [PostgresEndpoint]
    let strategy: MigrationStrategy
    let rows: Int
    let rate: Int
    let settle: Duration

    func measure() async throws -> StrategyReport.Run {
        try await withBenchCluster("strategies", backend: backend, shards: 4, servers: servers) { cluster, manager in
            say("strategies, \(backend.rawValue), \(strategy.rawValue): loading \(grouped(rows)) rows …")
            _ = try await BenchData.load(cluster, table: benchTable, rows: rows)
            let newcomer = try await cluster.addShard(index: 5)
            // The same settings for every strategy: the throttle on, a short canary (every
            // strategy shadow-reads), no bake.
            var settings = BenchMigration.settings(latencyFactor: 2)
            settings.canarySteps = [10, 100]
            settings.canaryStepMillis = 500
            settings.strategy = strategy
            if strategy.servesReadsGradually {
                // Reads move in the canary's steps, so the table compares like with like.
                settings.readSteps = [10, 100]
                settings.readStepMillis = 500
            }
            let run = try await BenchMigration.underLoad(
                cluster, manager, .addShard(newcomer), settings: settings, keys: rows, rate: rate, settle: settle,
                label: "add s5 by \(strategy.rawValue)")
            return StrategyReport.Run(
                strategy: strategy.rawValue, samples: run.samples, origin: run.origin, begin: run.begin, end: run.end,
                status: run.outcome.status)
        }
    }
}

/// One backend's strategies side by side.
struct StrategyReport: BackendReport {
    struct Run: Codable, Sendable {
        let strategy: String
        let seconds: Double
        let phases: [String]
        let p99BeforeMillis: Double
        let p99DuringMillis: Double
        let p99AfterMillis: Double
        let errors: Int
        /// The longest any cutover held writes, and the held writes' p99 wait.
        let holdMillis: UInt64
        let heldP99Millis: Double
        let rowsCopied: Int
        /// Second writes the new owner took, and failed ones queued for retries.
        let secondWrites: Int
        let queuedSecondWrites: Int
        /// Writes recorded in the replay log, and replayed on the new owner.
        let recordedWrites: Int
        let replayedWrites: Int
        /// Reads the new owner answered as the canary's shadow.
        let shadowReads: Int
        /// `write_new_read_old`'s read steps: reads the new owner served alone before reads moved for good.
        let servedReads: Int
        /// After a switch that came first: rows copied on access, and reads an old owner answered.
        let copiedOnAccess: Int
        let oldOwnerReads: Int

        init(strategy: String, samples: [BenchLoad.Sample], origin: UInt64, begin: UInt64, end: UInt64, status: MigrationStatus) {
            self.strategy = strategy
            let machine = status.machine
            seconds = Double(end - min(end, begin)) / 1_000
            phases = machine.phaseLog.map(\.phase.rawValue)
            func p99(_ keep: (UInt64) -> Bool) -> Double {
                percentile(samples.filter { keep(origin + $0.startMicros / 1_000) }.map { Double($0.latencyMicros) / 1_000 }.sorted(), 99)
            }
            p99BeforeMillis = p99 { $0 < begin }
            p99DuringMillis = p99 { $0 >= begin && $0 < end }
            p99AfterMillis = p99 { $0 >= end }
            errors = samples.filter { !$0.ok }.count
            holdMillis = machine.pausesMillis.max() ?? 0
            heldP99Millis = status.pauses.map(\.p99Millis).max() ?? 0
            rowsCopied = machine.rowsCopied
            secondWrites = status.secondWrites?.written ?? 0
            queuedSecondWrites = status.secondWrites?.queued ?? 0
            recordedWrites = status.secondWrites?.recorded ?? 0
            replayedWrites = machine.replayed?.applied ?? 0
            shadowReads = status.shadow?.reads ?? 0
            servedReads = status.served?.served ?? 0
            copiedOnAccess = status.secondWrites?.copied ?? 0
            oldOwnerReads = status.secondWrites?.oldOwnerReads ?? 0
        }
    }

    let backend: String
    let rows: Int
    let rate: Int
    let runs: [Run]
    let unavailable: [String]

    var checks: [TargetCheck] { [] }

    var markdown: String {
        var lines = [
            "### \(backend): add s5 to 4 shards of \(grouped(rows)) rows under \(rate) requests/s (30 % writes), one cluster per strategy",
            "",
            "| strategy | seconds | p99 before / during / after (ms) | errors | write hold (ms) | held p99 (ms) | rows copied | extra writes | shadow reads | new owner alone | old owner |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for run in runs {
            var extra: [String] = []
            if run.secondWrites + run.queuedSecondWrites > 0 {
                extra.append("\(grouped(run.secondWrites)) second (\(run.queuedSecondWrites) queued)")
            }
            if run.recordedWrites + run.replayedWrites > 0 {
                extra.append("\(grouped(run.recordedWrites)) recorded, \(grouped(run.replayedWrites)) replayed")
            }
            if run.copiedOnAccess > 0 { extra.append("\(grouped(run.copiedOnAccess)) copied on access") }
            lines.append(
                "| \(run.strategy) | \(String(format: "%.1f", run.seconds)) | "
                    + String(format: "%.2f / %.2f / %.2f", run.p99BeforeMillis, run.p99DuringMillis, run.p99AfterMillis)
                    + " | \(run.errors) | \(run.holdMillis) | \(String(format: "%.2f", run.heldP99Millis)) | \(grouped(run.rowsCopied)) | "
                    + "\(extra.isEmpty ? "none" : extra.joined(separator: "; ")) | \(run.shadowReads) | \(grouped(run.servedReads)) | "
                    + "\(grouped(run.oldOwnerReads)) |")
        }
        lines += [
            "",
            "New owner alone: reads write_new_read_old's read steps served from the new owner alone before reads moved for good. "
                + "Old owner: reads an old owner answered after a switch that came first (the row not copied yet).",
        ]
        if !unavailable.isEmpty { lines += ["Not available yet: \(unavailable.joined(separator: ", "))."] }
        return lines.joined(separator: "\n")
    }
}
