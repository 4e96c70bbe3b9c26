import Foundation
import ReshardClient
import ReshardCore
import Synchronization

/// A steady foreground load for the benchmarks: `clients` keep-alive HTTP connections sending
/// GETs and PUTs of random keys at a fixed total rate on an open schedule (a slow answer does
/// not lower the offered load), recording when each request started and how long it took.
/// Samples are kept up to `maxSamples` in all, so memory is bounded whatever the run's length.
final class BenchLoad: Sendable {
    /// One request.
    struct Sample: Sendable {
        /// Start, microseconds since the load started.
        let startMicros: UInt64
        let latencyMicros: UInt32
        let isWrite: Bool
        /// The HTTP status, 0 when no answer came.
        let status: UInt16

        /// 200 (201 for a write that created its row, 404 for a read), as expected.
        var ok: Bool { status == 200 || (isWrite && status == 201) || (!isWrite && status == 404) }
    }

    /// How many samples got each status, keyed by its text.
    static func statusCounts(_ samples: [Sample]) -> [String: Int] {
        Dictionary(grouping: samples, by: { String($0.status) }).mapValues(\.count)
    }

    let port: Int
    let table: String
    let clients: Int
    let keys: Int
    let ratePerSecond: Int
    /// Percent of requests that are PUTs.
    let writePercent: Int
    let maxSamples: Int
    /// When set, the only keys the clients use (e.g. those of a moving range).
    let keyPool: [Int]?
    /// Wall-clock milliseconds when the load started, to line samples up with the phase log.
    let startedAtWallMillis = Mutex<UInt64>(0)
    private let stopped = Atomic(false)

    init(
        port: Int, table: String, clients: Int, keys: Int, ratePerSecond: Int, writePercent: Int, maxSamples: Int = 2_000_000,
        keyPool: [Int]? = nil
    ) {
        self.keyPool = keyPool
        self.port = port
        self.table = table
        self.clients = clients
        self.keys = keys
        self.ratePerSecond = ratePerSecond
        self.writePercent = writePercent
        self.maxSamples = maxSamples
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Runs until `stop()`; returns every client's samples, merged in start order.
    func run() async throws -> [Sample] {
        let start = ContinuousClock.now
        startedAtWallMillis.withLock { $0 = wallMillis() }
        let perClient = maxSamples / max(1, clients)
        let samples = try await withThrowingTaskGroup(of: [Sample].self) { group in
            for client in 0..<clients {
                group.addTask { try await self.client(client, start: start, limit: perClient) }
            }
            var all: [Sample] = []
            for try await samples in group { all += samples }
            return all
        }
        return samples.sorted { $0.startMicros < $1.startMicros }
    }

    private func client(_ client: Int, start: ContinuousClock.Instant, limit: Int) async throws -> [Sample] {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        var random = SeededRandom(seed: UInt64(client + 1) &* 0x9E37_79B9_7F4A_7C15)
        var samples: [Sample] = []
        samples.reserveCapacity(min(limit, 100_000))
        let interval = Duration.nanoseconds(1_000_000_000 * Int64(clients) / Int64(max(1, ratePerSecond)))
        var next = ContinuousClock.now
        var step = 0
        while !stopped.load(ordering: .relaxed) && samples.count < limit {
            next += interval
            if next > .now { try await Task.sleep(until: next) }
            let key = keyPool.map { $0[Int(random.next() % UInt64($0.count))] } ?? Int(random.next() % UInt64(keys))
            let isWrite = Int(random.next() % 100) < writePercent
            let path = "/v1/tables/\(table)/rows/k\(key)"
            let started = ContinuousClock.now
            let status: UInt16
            do {
                let response =
                    isWrite
                    ? try await connection.request("PUT", path, body: Self.body(key, step: step))
                    : try await connection.request("GET", path)
                status = UInt16(clamping: response.status)
            } catch let error as HTTPClientError {
                say("  load client \(client): \(error)")
                break
            }
            let latency = ContinuousClock.now - started
            samples.append(
                Sample(
                    startMicros: UInt64((started - start).wholeMicroseconds), latencyMicros: UInt32(clamping: latency.wholeMicroseconds),
                    isWrite: isWrite, status: status))
            step += 1
        }
        await connection.close()
        return samples
    }

    /// A row of about 200 bytes.
    static func body(_ key: Int, step: Int) -> [UInt8] {
        Array(
            #"{"id":"k\#(key)","owner":"customer-\#(key % 9_973)","amount":\#(step % 100_000).25,"note":"reshard benchmark row, padded to about two hundred bytes ......................................"}"#
                .utf8)
    }
}
