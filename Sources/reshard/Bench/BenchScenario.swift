import Foundation
import Histogram
import ReshardClient
import ReshardCore

/// Latency in microseconds; the alias keeps this file clear of Prometheus's own `Histogram`.
typealias LatencyHistogram = Histogram<UInt64>

/// One measured load: `requests` requests over `connections` keep-alive connections.
struct Scenario: Sendable {
    enum Operation: String, Sendable, Codable { case get = "GET", put = "PUT" }

    struct Result: Sendable, Codable {
        let target: String
        let operation: Operation
        let connections: Int
        let requests: Int
        let errors: Int
        let seconds: Double
        let throughput: Double
        let p50Micros: UInt64
        let p99Micros: UInt64
        let p999Micros: UInt64
        let maxMicros: UInt64

        var line: String {
            "\(target) \(operation.rawValue) c=\(connections): \(Int(throughput)) req/s, p50 \(p50Micros) µs, p99 \(p99Micros) µs, errors \(errors)"
        }
    }

    let target: String
    let operation: Operation
    let connections: Int
    let requests: Int
    let rows: Int
    let port: Int
    let pathPrefix: String

    func run() async throws -> Result {
        let perConnection = max(1, requests / connections)
        let start = ContinuousClock.now
        let (histogram, errors) = try await withThrowingTaskGroup(of: (LatencyHistogram, Int).self) { group in
            for worker in 0..<connections {
                group.addTask { try await self.worker(worker, count: perConnection) }
            }
            var merged = LatencyHistogram(numberOfSignificantValueDigits: .three)
            var errors = 0
            for try await (histogram, failed) in group {
                merged.add(histogram)
                errors += failed
            }
            return (merged, errors)
        }
        let elapsed = ContinuousClock.now - start
        let seconds = elapsed.seconds
        let total = perConnection * connections
        return Result(
            target: target, operation: operation, connections: connections, requests: total, errors: errors, seconds: seconds,
            throughput: Double(total) / seconds, p50Micros: histogram.valueAtPercentile(50), p99Micros: histogram.valueAtPercentile(99),
            p999Micros: histogram.valueAtPercentile(99.9), maxMicros: histogram.max)
    }

    private func worker(_ worker: Int, count: Int) async throws -> (LatencyHistogram, Int) {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        var histogram = LatencyHistogram(numberOfSignificantValueDigits: .three)
        var errors = 0
        var key = worker &* 7919
        for _ in 0..<count {
            key = (key &+ 104_729) % rows
            let path = "\(pathPrefix)/v1/tables/bench/rows/k\(key)"
            let started = ContinuousClock.now
            let response: HTTPClientResponse
            switch operation {
            case .get: response = try await connection.request("GET", path)
            case .put: response = try await connection.request("PUT", path, body: Array(RouterBench.rowBody(key).utf8))
            }
            let elapsed = ContinuousClock.now - started
            histogram.record(max(1, elapsed.wholeMicroseconds))
            if response.status != 200 { errors += 1 }
        }
        await connection.close()
        return (histogram, errors)
    }
}
