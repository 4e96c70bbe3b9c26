import ArgumentParser
import Foundation
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// The write pause at cutover: one slice of the hash space moved back and forth between two
/// shards, one migration after another, while clients write steadily through the router. Each
/// cutover holds the slice's writes from the hold to the release of the new map; the figures
/// are those holds over every cutover, and the waits of the writes that arrived during them.
struct CutoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cutover",
        abstract: "Distribution of the write pause over repeated cutovers under a steady write load.",
        discussion: """
            Example:
              swift run -c release reshard-bench cutover --cutovers 40
            """
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Cutovers to measure (at least 20); default 40, or 20 with --quick.")
    var cutovers: Int?

    @Option(help: "Writes per second of the steady load.")
    var rate = 1_000

    func validate() throws {
        if let cutovers, !(20...1_000).contains(cutovers) { throw ValidationError("--cutovers must be 20…1,000") }
        guard (10...20_000).contains(rate) else { throw ValidationError("--rate must be 10…20,000") }
    }

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(environment: environment, cutovers: cutovers ?? (options.quick ? 20 : 40), rate: rate)
            .present(out: options.out)
    }

    static func measure(environment: BenchEnvironment, cutovers: Int, rate: Int) async throws -> BenchFile<CutoverReport> {
        try await BenchFile.measure("cutover", environment) { backend in
            try await CutoverScenario(backend: backend, servers: environment.servers, cutovers: cutovers, rate: rate).measure()
        }
    }
}

struct CutoverScenario {
    let backend: ShardBackend
    let servers: [PostgresEndpoint]
    let cutovers: Int
    let rate: Int

    static let rows = 20_000

    func measure() async throws -> CutoverReport {
        try await withBenchCluster("cutover", backend: backend, shards: 2, servers: servers) { cluster, manager in
            _ = try await BenchData.load(cluster, table: benchTable, rows: Self.rows)
            return try await measure(cluster, manager)
        }
    }

    private func measure(_ cluster: ScratchCluster, _ manager: MigrationManager) async throws -> CutoverReport {
        let server = try await LoopbackServer.reshard(cluster, migrations: manager)
        let load = BenchLoad(port: server.port, table: benchTable, clients: 4, keys: Self.rows, ratePerSecond: rate, writePercent: 100)
        let loadTask = Task { try await load.run() }
        PeakMemory.reset()
        // A 1/8 slice: small enough to copy in moments, so the figures are the cutovers', and
        // wide enough that writes arrive while it is held.
        let slice = HashRange(start: 0, last: UInt64.max / 8)
        var holds: [Double] = []
        var held: [PauseSummary] = []
        var steps: [String: [Double]] = [:]
        var failure: (any Error)?
        say("cutover, \(backend.rawValue): \(cutovers) cutovers under \(rate) writes/s …")
        for round in 0..<cutovers {
            let target = try ShardID(round % 2 == 0 ? "s2" : "s1").orThrow("shard id")
            do {
                let status = try await BenchMigration.run(
                    manager, .moveRange(slice, to: target), settings: BenchMigration.settings(latencyFactor: nil),
                    label: "cutover \(round + 1)", showProgress: false, timeout: .seconds(120)
                ).status
                // The pause runs from the start of the hold to the end of the release, steps and
                // the rounds between them, in microseconds (the journal's pausesMillis are whole
                // milliseconds).
                if let pause = status.cutoverPauseMicros { holds.append(Double(pause) / 1_000) }
                held += status.pauses
                for timing in status.cutoverSteps { steps[timing.step.rawValue, default: []].append(Double(timing.micros) / 1_000) }
            } catch {
                failure = error
                break
            }
            if (round + 1) % 5 == 0 { say("  \(round + 1) cutovers, holds so far: max \(Int(holds.max() ?? 0)) ms") }
        }
        load.stop()
        let samples = try await loadTask.value
        await server.stop()
        if let failure { throw failure }
        let writes = samples.filter(\.isWrite)
        let latencies = writes.map { Double($0.latencyMicros) / 1_000 }.sorted()
        return CutoverReport(
            backend: backend.rawValue, cutovers: holds.count, writesPerSecond: rate, holdMillis: holds, held: held,
            stepMillis: steps.mapValues { percentiles($0.sorted()) }, clientWrites: writes.count,
            clientErrors: writes.filter { !$0.ok }.count, clientStatuses: BenchLoad.statusCounts(writes),
            clientWriteMillis: percentiles(latencies), peakMemoryBytes: PeakMemory.peakBytes)
    }
}

/// p50, p99 and max of sorted values.
struct Percentiles: Codable, Sendable {
    let p50: Double
    let p99: Double
    let max: Double
}

func percentiles(_ sorted: [Double]) -> Percentiles {
    Percentiles(p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.last ?? 0)
}

struct CutoverReport: BackendReport {
    let backend: String
    let cutovers: Int
    let writesPerSecond: Int
    /// How long each cutover held the slice's writes, milliseconds.
    let holdMillis: [Double]
    /// Per cutover: the waits of the writes it held.
    let held: [PauseSummary]
    /// Each cutover step's duration over all cutovers, milliseconds.
    let stepMillis: [String: Percentiles]
    let clientWrites: Int
    let clientErrors: Int
    /// Answers by HTTP status (0: no answer).
    let clientStatuses: [String: Int]
    /// Every client write's latency over the whole run, milliseconds.
    let clientWriteMillis: Percentiles
    let peakMemoryBytes: Int

    var hold: Percentiles { percentiles(holdMillis.sorted()) }
    var heldWrites: Int { held.reduce(0) { $0 + $1.count } }
    var longestHeldWrite: Double { held.map(\.maxMillis).max() ?? 0 }

    var checks: [TargetCheck] {
        let hold = hold
        let detail = "\(cutovers) cutovers, \(heldWrites) writes held, longest held write \(String(format: "%.1f", longestHeldWrite)) ms"
        return [
            .below("write pause at cutover, p99", backend, hold.p99, 10, unit: "ms", detail: detail),
            .below("write pause at cutover, max", backend, hold.max, 50, unit: "ms", detail: detail),
        ]
    }

    var markdown: String {
        let hold = hold
        var lines = [
            "**\(backend)**: \(cutovers) cutovers under \(writesPerSecond) writes/s; \(clientWrites) writes, answers \(clientStatuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))",
            "",
            "| figure | p50 ms | p99 ms | max ms |",
            "| --- | ---: | ---: | ---: |",
            String(format: "| write pause (hold → release) | %.1f | %.1f | %.1f |", hold.p50, hold.p99, hold.max),
        ]
        let waits = held.map(\.maxMillis).sorted()
        lines.append(
            String(
                format: "| longest held write per cutover (%d held) | %.1f | %.1f | %.1f |", heldWrites, percentile(waits, 50),
                percentile(waits, 99), waits.last ?? 0))
        for (step, figures) in stepMillis.sorted(by: { $0.key < $1.key }) {
            lines.append(String(format: "| step %@ | %.1f | %.1f | %.1f |", step as NSString, figures.p50, figures.p99, figures.max))
        }
        lines.append(
            String(
                format: "| every client write | %.1f | %.1f | %.1f |", clientWriteMillis.p50, clientWriteMillis.p99, clientWriteMillis.max))
        return lines.joined(separator: "\n")
    }
}
