import Foundation
import Histogram
import ReshardClient
import ReshardCore

/// Latency in microseconds; the alias keeps this file clear of Prometheus's own `Histogram`.
typealias LatencyHistogram = Histogram<UInt64>

/// One measured load: `requests` requests over `connections` concurrent clients, each client
/// an HTTP keep-alive connection or a task calling the store in process.
struct Scenario: Sendable {
    enum Operation: String, Sendable, Codable { case get = "GET", put = "PUT" }

    /// One client: sends one request for a key, answers whether it succeeded.
    struct Client: Sendable {
        let send: @Sendable (Operation, Int) async throws -> Bool
        let close: @Sendable () async -> Void

        /// A keep-alive connection to Reshard's row routes (or the bare route under `prefix`).
        static func http(port: Int, prefix: String) async throws -> Client {
            let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
            return Client(
                send: { operation, key in
                    let path = "\(prefix)/v1/tables/\(benchTable)/rows/k\(key)"
                    let response =
                        switch operation {
                        case .get: try await connection.request("GET", path)
                        case .put: try await connection.request("PUT", path, body: BenchLoad.body(key, step: 1))
                        }
                    return (200..<300).contains(response.status)
                }, close: { await connection.close() })
        }
    }

    struct Result: Sendable, Codable {
        let backend: String
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
            "\(backend) \(target) \(operation.rawValue) c=\(connections): \(Int(throughput)) req/s, p50 \(p50Micros) µs, p99 \(p99Micros) µs, errors \(errors)"
        }
    }

    let backend: String
    let target: String
    let operation: Operation
    let connections: Int
    let requests: Int
    let rows: Int
    let makeClient: @Sendable () async throws -> Client

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
        let seconds = (ContinuousClock.now - start).seconds
        let total = perConnection * connections
        return Result(
            backend: backend, target: target, operation: operation, connections: connections, requests: total, errors: errors,
            seconds: seconds, throughput: Double(total) / seconds, p50Micros: histogram.valueAtPercentile(50),
            p99Micros: histogram.valueAtPercentile(99), p999Micros: histogram.valueAtPercentile(99.9), maxMicros: histogram.max)
    }

    private func worker(_ worker: Int, count: Int) async throws -> (LatencyHistogram, Int) {
        let client = try await makeClient()
        var histogram = LatencyHistogram(numberOfSignificantValueDigits: .three)
        var errors = 0
        var key = worker &* 7919
        for _ in 0..<count {
            key = (key &+ 104_729) % rows
            let started = ContinuousClock.now
            let ok = try await client.send(operation, key)
            histogram.record(max(1, (ContinuousClock.now - started).wholeMicroseconds))
            if !ok { errors += 1 }
        }
        await client.close()
        return (histogram, errors)
    }
}
