import ArgumentParser
import Foundation
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Synchronization

/// The write pause at cutover: one slice of the hash space moved back and forth between two
/// shards, one migration after another, while clients write steadily through the router. Each
/// cutover holds the slice's writes from the hold to the release of the new map; the figures
/// are those holds over every cutover, and the waits of the writes that arrived during them.
struct CutoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cutover",
        abstract: "Distribution of the write pause over repeated cutovers under a steady write load.",
        discussion: """
            Cutovers run until at least --min-held client writes were held (and at least --cutovers cutovers ran), so the p99 is a percentile of a thousand waits, not the worst of a handful.

            Example:
              swift run -c release reshard-bench cutover --cutovers 40
            """
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Cutovers to run at least; default 40, or 20 with --quick.")
    var cutovers: Int?

    @Option(help: "Held client writes to measure at least (cutovers go on until then, at most 400).")
    var minHeld = 1_000

    @Option(help: "Writes per second of the steady load over every key.")
    var rate = 1_000

    @Option(help: "Writes per second into the moving slice, on top of --rate.")
    var sliceRate = 1_500

    func validate() throws {
        if let cutovers, !(1...400).contains(cutovers) { throw ValidationError("--cutovers must be 1…400") }
        guard (0...100_000).contains(minHeld) else { throw ValidationError("--min-held must be 0…100,000") }
        guard (10...20_000).contains(rate) else { throw ValidationError("--rate must be 10…20,000") }
        guard (0...20_000).contains(sliceRate) else { throw ValidationError("--slice-rate must be 0…20,000") }
    }

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(
            environment: environment, cutovers: cutovers ?? (options.quick ? 20 : 40), minHeld: minHeld, rate: rate, sliceRate: sliceRate
        ).present(out: options.out)
    }

    static func measure(environment: BenchEnvironment, cutovers: Int, minHeld: Int = 1_000, rate: Int, sliceRate: Int = 1_500)
        async throws -> BenchFile<CutoverReport>
    {
        try await BenchFile.measure("cutover", environment) { backend in
            try await CutoverScenario(
                backend: backend, servers: environment.servers, cutovers: cutovers, minHeld: minHeld, rate: rate, sliceRate: sliceRate
            ).measure()
        }
    }
}

struct CutoverScenario {
    let backend: ShardBackend
    let servers: [PostgresEndpoint]
    let cutovers: Int
    let minHeld: Int
    let rate: Int
    let sliceRate: Int

    static let rows = 20_000
    static let maxCutovers = 400

    func measure() async throws -> CutoverReport {
        try await withBenchCluster("cutover", backend: backend, shards: 2, servers: servers) { cluster, manager in
            _ = try await BenchData.load(cluster, table: benchTable, rows: Self.rows)
            return try await measure(cluster, manager)
        }
    }

    private func measure(_ cluster: ScratchCluster, _ manager: MigrationManager) async throws -> CutoverReport {
        let server = try await LoopbackServer.reshard(cluster, migrations: manager)
        // A 1/8 slice: small enough to copy in moments, so the figures are the cutovers', and
        // wide enough that writes arrive while it is held.
        let slice = HashRange(start: 0, last: UInt64.max / 8)
        let sliceKeys = (0..<Self.rows).filter { slice.contains(KeyHash.of("k\($0)")) }
        let load = BenchLoad(port: server.port, table: benchTable, clients: 4, keys: Self.rows, ratePerSecond: rate, writePercent: 100)
        // Writers that keep writing into the moving slice, so that every hold holds writes.
        let sliceLoad = BenchLoad(
            port: server.port, table: benchTable, clients: 16, keys: Self.rows, ratePerSecond: max(1, sliceRate), writePercent: 100,
            keyPool: sliceKeys.isEmpty || sliceRate == 0 ? nil : sliceKeys)
        let waits = Mutex<[Double]>([])
        cluster.router.gate.observeWaits { wait in waits.withLock { $0.append(wait.milliseconds) } }
        defer { cluster.router.gate.observeWaits(nil) }
        let loadTask = Task { try await load.run() }
        let sliceTask = Task { sliceRate == 0 ? [] : try await sliceLoad.run() }
        PeakMemory.reset()
        var holds: [Double] = []
        var held: [PauseSummary] = []
        var steps: [String: [Double]] = [:]
        var failure: (any Error)?
        say(
            "cutover, \(backend.rawValue): at least \(cutovers) cutovers and \(minHeld) held writes under \(rate) + \(sliceRate) writes/s …"
        )
        var round = 0
        while round < Self.maxCutovers && (round < cutovers || waits.withLock({ $0.count }) < minHeld) {
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
            round += 1
            if round % 10 == 0 {
                say("  \(round) cutovers, \(waits.withLock { $0.count }) writes held, holds so far: max \(Int(holds.max() ?? 0)) ms")
            }
        }
        load.stop()
        sliceLoad.stop()
        let samples = try await loadTask.value + sliceTask.value
        await server.stop()
        if let failure { throw failure }
        let writes = samples.filter(\.isWrite)
        let latencies = writes.map { Double($0.latencyMicros) / 1_000 }.sorted()
        return CutoverReport(
            backend: backend.rawValue, cutovers: holds.count, writesPerSecond: rate, sliceWritesPerSecond: sliceRate, holdMillis: holds,
            heldWaitMillis: waits.withLock { $0 }, held: held, stepMillis: steps.mapValues { percentiles($0.sorted()) },
            clientWrites: writes.count, clientErrors: writes.filter { !$0.ok }.count, clientStatuses: BenchLoad.statusCounts(writes),
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
    let sliceWritesPerSecond: Int
    /// How long each cutover held the slice's writes, milliseconds.
    let holdMillis: [Double]
    /// How long each held client write waited, milliseconds (the gate's own clock).
    let heldWaitMillis: [Double]
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
    var heldWait: Percentiles { percentiles(heldWaitMillis.sorted()) }

    var checks: [TargetCheck] {
        let wait = heldWait
        let hold = hold
        let detail = String(
            format: "%d held writes over %d cutovers, p50 %.1f ms; hold → release p50 %.1f, p99 %.1f, max %.1f ms", heldWaitMillis.count,
            cutovers, wait.p50, hold.p50, hold.p99, hold.max)
        return [
            .below("write pause at cutover (held writes' waits), p99", backend, wait.p99, 10, unit: "ms", detail: detail),
            .below("write pause at cutover (held writes' waits), max", backend, wait.max, 50, unit: "ms", detail: ""),
        ]
    }

    var markdown: String {
        let hold = hold
        var lines = [
            "**\(backend)**: \(cutovers) cutovers under \(writesPerSecond) writes/s over every key and \(sliceWritesPerSecond) into the moving slice; \(clientWrites) writes, answers \(clientStatuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))",
            "",
            "| figure | samples | p50 ms | p99 ms | max ms |",
            "| --- | ---: | ---: | ---: | ---: |",
            String(
                format: "| held write's wait | %d | %.2f | %.2f | %.2f |", heldWaitMillis.count, heldWait.p50, heldWait.p99, heldWait.max),
            String(format: "| write pause (hold → release) | %d | %.2f | %.2f | %.2f |", holdMillis.count, hold.p50, hold.p99, hold.max),
        ]
        for (step, figures) in stepMillis.sorted(by: { $0.key < $1.key }) {
            lines.append(
                String(
                    format: "| step %@ | %d | %.2f | %.2f | %.2f |", step as NSString, holdMillis.count, figures.p50, figures.p99,
                    figures.max))
        }
        lines.append(
            String(
                format: "| every client write | %d | %.2f | %.2f | %.2f |", clientWrites, clientWriteMillis.p50, clientWriteMillis.p99,
                clientWriteMillis.max))
        return lines.joined(separator: "\n")
    }
}
