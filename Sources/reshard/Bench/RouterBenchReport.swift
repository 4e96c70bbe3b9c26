import Foundation

/// The JSON file and Markdown table of one router benchmark run.
struct RouterBenchReport: Codable {
    struct Ratio: Codable {
        let operation: String
        let connections: Int
        let throughputVsBare: Double
        let p99AddedMicros: Int64
    }

    let benchmark: String
    let date: String
    let rows: Int
    let requestsPerScenario: Int
    let results: [Scenario.Result]
    let ratios: [Ratio]

    init(results: [Scenario.Result], rows: Int, requests: Int) {
        benchmark = "router-overhead"
        date = ISO8601DateFormatter().string(from: Date())
        self.rows = rows
        requestsPerScenario = requests
        self.results = results
        var ratios: [Ratio] = []
        for reshard in results where reshard.target == "reshard" {
            guard
                let bare = results.first(where: {
                    $0.target == "bare" && $0.operation == reshard.operation && $0.connections == reshard.connections
                })
            else { continue }
            ratios.append(
                Ratio(
                    operation: reshard.operation.rawValue, connections: reshard.connections,
                    throughputVsBare: reshard.throughput / bare.throughput,
                    p99AddedMicros: Int64(reshard.p99Micros) - Int64(bare.p99Micros)))
        }
        self.ratios = ratios
    }

    var markdown: String {
        var lines = [
            "| op | conns | target | req/s | p50 µs | p99 µs | p999 µs | max µs | errors |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results {
            lines.append(
                "| \(r.operation.rawValue) | \(r.connections) | \(r.target) | \(Int(r.throughput)) | \(r.p50Micros) | \(r.p99Micros) "
                    + "| \(r.p999Micros) | \(r.maxMicros) | \(r.errors) |")
        }
        lines += ["", "| op | conns | reshard/bare throughput | p99 added µs |", "|---|---:|---:|---:|"]
        for ratio in ratios {
            lines.append(
                "| \(ratio.operation) | \(ratio.connections) | \(String(format: "%.2f", ratio.throughputVsBare)) | \(ratio.p99AddedMicros) |"
            )
        }
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
