import Foundation

/// The JSON file and Markdown table of one router benchmark run.
struct RouterBenchReport: BenchResult, Codable {
    struct Ratio: Codable {
        let backend: String
        let operation: String
        let connections: Int
        let throughputVsBare: Double
        let p99AddedOverBareMicros: Int64
        /// Against the bare route that makes the same store call: what routing itself costs.
        let throughputVsBareStore: Double
        let p99AddedOverBareStoreMicros: Int64
        let throughputVsDirect: Double
        let p99AddedOverDirectMicros: Int64
        /// Wall microseconds per request the router's engine called in process (no HTTP) adds
        /// over the store call alone, at this concurrency: routing's own cost, apart from HTTP's.
        let engineAddedMicros: Double?
    }

    var benchmark = "router-overhead"
    let date: String
    let rows: Int
    let requestsPerScenario: Int
    let results: [Scenario.Result]
    let ratios: [Ratio]
    /// Peak resident memory of the process during each backend's scenarios.
    let peakMemoryBytes: [String: Int]
    /// PostgreSQL's own ceiling for the same point read, without Reshard or HTTP.
    let pgbench: PgbenchCeiling?
    let skipped: String?

    init(
        results: [Scenario.Result], rows: Int, requests: Int, peakMemoryBytes: [String: Int], pgbench: PgbenchCeiling?, skipped: String?
    ) {
        self.pgbench = pgbench
        date = ISO8601DateFormatter().string(from: Date())
        self.rows = rows
        requestsPerScenario = requests
        self.results = results
        self.peakMemoryBytes = peakMemoryBytes
        self.skipped = skipped
        var ratios: [Ratio] = []
        for reshard in results where reshard.target == "reshard" {
            func find(_ target: String) -> Scenario.Result? {
                results.first {
                    $0.target == target && $0.backend == reshard.backend && $0.operation == reshard.operation
                        && $0.connections == reshard.connections
                }
            }
            guard let bare = find("bare"), let bareStore = find("bare_store"), let direct = find("direct") else { continue }
            let engineAdded = find("engine").map { 1e6 / $0.throughput - 1e6 / direct.throughput }
            ratios.append(
                Ratio(
                    backend: reshard.backend, operation: reshard.operation.rawValue, connections: reshard.connections,
                    throughputVsBare: reshard.throughput / bare.throughput,
                    p99AddedOverBareMicros: Int64(reshard.p99Micros) - Int64(bare.p99Micros),
                    throughputVsBareStore: reshard.throughput / bareStore.throughput,
                    p99AddedOverBareStoreMicros: Int64(reshard.p99Micros) - Int64(bareStore.p99Micros),
                    throughputVsDirect: reshard.throughput / direct.throughput,
                    p99AddedOverDirectMicros: Int64(reshard.p99Micros) - Int64(direct.p99Micros), engineAddedMicros: engineAdded))
        }
        self.ratios = ratios
    }

    var checks: [TargetCheck] {
        var checks: [TargetCheck] = []
        for ratio in ratios where ratio.operation == "GET" && ratio.connections == 64 {
            checks.append(
                .atLeast(
                    "router GET throughput vs bare route making the same store call, 64 connections", ratio.backend,
                    ratio.throughputVsBareStore, 0.9, detail: String(format: "%.2f of a route with no storage", ratio.throughputVsBare)))
        }
        for ratio in ratios where ratio.connections == 1 {
            checks.append(
                .atMost(
                    "router p99 added latency over direct store call, 1 connection, \(ratio.operation) (ms)", ratio.backend,
                    Double(ratio.p99AddedOverDirectMicros) / 1_000, 1, detail: "router p99 minus store p99"))
        }
        return checks
    }

    var markdown: String {
        var lines = [
            "| backend | op | conns | target | req/s | p50 µs | p99 µs | p999 µs | max µs | errors |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results {
            lines.append(
                "| \(r.backend) | \(r.operation.rawValue) | \(r.connections) | \(r.target) | \(Int(r.throughput)) | \(r.p50Micros) "
                    + "| \(r.p99Micros) | \(r.p999Micros) | \(r.maxMicros) | \(r.errors) |")
        }
        lines += [
            "",
            "| backend | op | conns | reshard/bare store req/s | p99 added over bare store µs | reshard/bare req/s | reshard/direct req/s | p99 added over direct µs | engine µs/req over direct |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for ratio in ratios {
            lines.append(
                "| \(ratio.backend) | \(ratio.operation) | \(ratio.connections) | \(String(format: "%.2f", ratio.throughputVsBareStore)) "
                    + "| \(ratio.p99AddedOverBareStoreMicros) | \(String(format: "%.2f", ratio.throughputVsBare)) "
                    + "| \(String(format: "%.2f", ratio.throughputVsDirect)) | \(ratio.p99AddedOverDirectMicros) "
                    + "| \(ratio.engineAddedMicros.map { String(format: "%.1f", $0) } ?? "–") |"
            )
        }
        if let pgbench {
            lines += [
                "",
                String(
                    format:
                        "PostgreSQL's own ceiling for the read (pgbench, the same SELECT, %d clients over the shard databases, %d reads each): %.0f tps",
                    pgbench.clients, pgbench.readsPerClient, pgbench.transactionsPerSecond),
            ]
        }
        lines += ["", TargetCheck.markdown(checks)]
        return lines.joined(separator: "\n")
    }

    func write(to folder: String) throws -> String {
        try BenchResultFile.write(self, name: "router", date: date, to: folder)
    }
}

/// Where a benchmark's JSON goes: `<folder>/<name>-<date>.json`, and `<name>-latest.json`.
enum BenchResultFile {
    /// Writes `result` (snake_case keys, sorted, pretty) and returns the dated file's path.
    static func write(_ result: some Encodable, name: String, date: String, to folder: String) throws -> String {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(result)
        let path = "\(folder)/\(name)-\(date.replacingOccurrences(of: ":", with: "-")).json"
        try data.write(to: URL(fileURLWithPath: path))
        try data.write(to: URL(fileURLWithPath: "\(folder)/\(name)-latest.json"))
        return path
    }
}
