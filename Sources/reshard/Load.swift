import ArgumentParser
import Foundation
import ReshardAPI

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show where the routers' requests go: per shard load, the most requested keys, hot spots and what to do about them.",
        discussion: """
            Asks a running router (GET /v1/load), which merges its own load with every other router's last report. A shard is hot when it stays above 1.1x the mean in each of the last --windows one-second windows; one key holding over a quarter of a hot shard's requests is reported as a hot key (cache it, replicate its reads, or salt it), never split.

            With --propose, when a shard stayed hot, it plans (as a dry run) the load rebalance that would spread the heat and prints its moves and the balance it predicts, with the command that runs it; it starts nothing.

            Example:
              reshard load
              reshard load --signal bytes --top 5
              reshard load --propose
              reshard load --json
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "What load is measured by: requests, bytes or time.") var signal = "requests"
    @Option(help: "Complete one-second windows a shard must stay hot in (1...15).") var windows = 10
    @Option(help: "Top keys listed per shard (1...64).") var top = 3
    @Flag(help: "Print the migration that would spread the heat, and its predicted balance.") var propose = false
    @Flag(help: "Print the report as JSON (GET /v1/load's body).") var json = false

    func validate() throws {
        guard ["requests", "bytes", "time"].contains(signal) else { throw ValidationError("--signal must be requests, bytes or time") }
        guard (1...15).contains(windows) else { throw ValidationError("--windows must be 1...15") }
        guard (1...64).contains(top) else { throw ValidationError("--top must be 1...64") }
    }

    func run() async throws {
        let api = try await connection.connect()
        let report: API.LoadReport = try await api.get("/v1/load?signal=\(signal)&windows=\(windows)&top=\(top)")
        var proposal: Result<API.Plan, any Error>?
        if propose, report.finding.kind == "move" {
            do {
                let planned: API.MigrationCreated = try await api.post(
                    "/v1/migrations", body: API.CreateMigration(kind: "rebalance", signal: signal, dryRun: true))
                proposal = .success(planned.plan)
            } catch {
                proposal = .failure(error)
            }
        }
        await api.close()
        if json {
            try WireJSON.print(report)
        } else {
            print(LoadText.render(report, propose: propose, proposal: proposal))
        }
    }
}

enum LoadText {
    static func render(_ report: API.LoadReport, propose: Bool, proposal: Result<API.Plan, any Error>? = nil) -> String {
        var lines = [
            "Load by \(report.signal) over \(report.windows) complete \(report.windowMs) ms windows, routers \(report.routers.joined(separator: ", ")), "
                + "shard map generation \(report.generation)",
            "",
        ]
        let rows = report.shards.map { shard in
            [
                shard.shard, amount(shard.load, signal: report.signal), String(format: "%.1f %%", shard.share * 100),
                shard.topKeys.map { "\($0.key) (\($0.count - $0.error)-\($0.count))" }.joined(separator: ", "),
            ]
        }
        lines += TextTable.render(
            header: ["SHARD", "LOAD", "SHARE", "TOP KEYS (requests, at least-at most)"], rows: rows, rightAligned: [1, 2])
        lines += [
            "", String(format: "busiest shard: %.2fx the mean", report.maxOverMean),
            "finding: \(report.finding.kind): \(report.finding.advice)",
        ]
        guard propose else { return lines.joined(separator: "\n") }
        lines.append("")
        switch proposal {
        case .success(let plan)?:
            let sources = Set(plan.moves.map(\.source)).sorted().joined(separator: ", ")
            let targets = Set(plan.moves.map(\.target)).sorted().joined(separator: ", ")
            lines += [
                "proposal: rebalance by \(report.signal): \(plan.moves.count) ranges from \(sources) to \(targets), \(plan.rows) rows"
            ]
            if let balance = plan.balance { lines.append("  " + MigrationText.balanceLine(balance)) }
            lines.append("  reshard migrate rebalance --signal \(report.signal)")
            if let range = report.finding.range, let from = report.finding.shard {
                let predicted = report.predictedMaxOverMean.map { String(format: "%.2fx", $0) } ?? "unknown"
                lines += [
                    "or one step: move \(range.start)..\(range.end) from \(from) to \(range.shard) (\(predicted) predicted after)",
                    "  reshard migrate split-hot-range --signal \(report.signal)",
                ]
            }
        case .failure(let error)?:
            lines.append("proposal: none (the rebalance was refused: \(error))")
        default:
            lines.append("proposal: none (\(report.finding.kind))")
        }
        return lines.joined(separator: "\n")
    }

    /// Requests as counted, bytes and microseconds scaled for a reader.
    static func amount(_ value: Double, signal: String) -> String {
        switch signal {
        case "bytes": ByteCountFormatter.string(fromByteCount: Int64(min(value, 9e18)), countStyle: .binary)
        case "time": String(format: "%.1f ms", value / 1_000)
        default: String(format: "%.0f", value)
        }
    }
}
