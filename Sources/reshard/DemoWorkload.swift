import Foundation
import Histogram
import ReshardAPI
import ReshardClient
import ReshardCore
import Synchronization

/// The demo's stages, for latency figures before, during and after the migration.
enum DemoStage: Int, CaseIterable, Sendable {
    case before, during, after

    var name: String { ["before", "during", "after"][rawValue] }
}

/// Clients that read, write and delete rows over HTTP at a fixed total rate and remember what
/// the router acknowledged, so every acknowledged write and delete can be checked afterwards.
///
/// Each client writes and deletes only its own keys (key index modulo the client count) and reads
/// any key, so "no read older than the reader's own acknowledged write" is checkable per client
/// without coordination; reads of other clients' keys still exercise every range.
final class DemoWorkload: Sendable {
    /// What one client learned.
    struct ClientResult: Sendable {
        /// Per key index: the newest acknowledged version and whether it was a delete.
        var acknowledged: [Int: (version: UInt64, deleted: Bool)] = [:]
        /// Keys whose last write failed in transport: applied or not, nobody knows.
        var ambiguous: Set<Int> = []
        var latency = DemoStage.allCases.map { _ in LatencyHistogram(numberOfSignificantValueDigits: .three) }
        var reads = 0
        var writes = 0
        var deletes = 0
        /// 503 range_moving answers: a held write past its bound (retried by real clients).
        var rangeMoving = 0
        /// Anything else that was not 200 or an expected 404.
        var errors = 0
        var lastError: String?
        /// Reads that returned an older version than this client's own acknowledged write.
        var staleReads = 0
    }

    let port: Int
    let clients: Int
    let keys: Int
    let opsPerSecond: Int
    let stage = Mutex(DemoStage.before)
    private let stopped = Atomic(false)
    /// Latencies since the last `takeWindow`, for the live progress line.
    private let window = Mutex(LatencyHistogram(numberOfSignificantValueDigits: .three))

    /// `keys` is the key space (preloaded keys and some new ones); `opsPerSecond` is the total
    /// over all clients.
    init(port: Int, clients: Int, keys: Int, opsPerSecond: Int) {
        self.port = port
        self.clients = clients
        self.keys = keys
        self.opsPerSecond = opsPerSecond
    }

    static func key(_ index: Int) -> String { "a\(index)" }

    /// A row; its `customer` changes with `step`, so a workload's updates move rows between
    /// customers (the field `reshard demo --change-shard-key` places rows by).
    static func body(_ index: Int, client: Int, step: Int) -> [UInt8] {
        Array(
            #"{"id":"a\#(index)","owner":"client-\#(client)","customer":"c\#((index &* 7 &+ step) % 1_000)","balance":\#((index &* 7_919 &+ step) % 100_000),"note":"reshard demo row, padded to about two hundred bytes so the copy moves realistic rows ........"}"#
                .utf8)
    }

    /// Asks every client to stop after its current request.
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// The p99 of requests since the last call, in microseconds (nil when there were none).
    func takeWindowP99() -> UInt64? {
        window.withLock { histogram in
            defer { histogram.reset() }
            return histogram.totalCount == 0 ? nil : histogram.valueAtPercentile(99)
        }
    }

    /// Runs the clients until `stop()` (each bounded by `maxOpsPerClient` requests).
    func run(maxOpsPerClient: Int = 5_000_000) async throws -> [ClientResult] {
        try await withThrowingTaskGroup(of: ClientResult.self) { group in
            for client in 0..<clients {
                group.addTask { try await self.client(client, maxOps: maxOpsPerClient) }
            }
            var results: [ClientResult] = []
            for try await result in group { results.append(result) }
            return results
        }
    }

    private func client(_ client: Int, maxOps: Int) async throws -> ClientResult {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        var result = ClientResult()
        var random = SeededRandom(seed: UInt64(client + 1) &* 0x9E37_79B9)
        let interval = Duration.nanoseconds(1_000_000_000 * clients / max(1, opsPerSecond))
        var next = ContinuousClock.now
        for step in 0..<maxOps where !stopped.load(ordering: .relaxed) {
            // An open schedule: a slow answer does not lower the offered load afterwards.
            next += interval
            if next > .now { try await Task.sleep(until: next) }
            let roll = random.next() % 100
            let stage = self.stage.withLock { $0 }
            let started = ContinuousClock.now
            if roll < 60 {
                let index = Int(random.next() % UInt64(keys))
                try await read(index, on: connection, client: client, into: &result)
            } else {
                // Only this client's keys: index ≡ client (mod clients).
                let index = Int(random.next() % UInt64(keys / clients)) * clients + client
                try await write(index, delete: roll >= 90, step: step, on: connection, client: client, into: &result)
            }
            let micros = max(1, (ContinuousClock.now - started).wholeMicroseconds)
            result.latency[stage.rawValue].record(micros)
            window.withLock { $0.record(micros) }
        }
        await connection.close()
        return result
    }

    private func read(_ index: Int, on connection: HTTPConnection, client: Int, into result: inout ClientResult) async throws {
        result.reads += 1
        let response: HTTPClientResponse
        do {
            response = try await connection.request("GET", "/v1/tables/\(DemoRun.tableName)/rows/\(Self.key(index))")
        } catch let error as HTTPClientError {
            result.errors += 1
            result.lastError = "GET: \(error)"
            return
        }
        var version: UInt64?
        switch response.status {
        case 200: version = (try? API.decode(API.RowMetadata.self, from: Data(response.body)))?.version
        case 404: version = nil
        default:
            result.errors += 1
            result.lastError = "GET \(response.status): \(response.text.prefix(200))"
            return
        }
        // Only this client writes its own keys, so its last acknowledgement is the floor.
        if index % clients == client, let own = result.acknowledged[index], !result.ambiguous.contains(index) {
            let stale = own.deleted ? version.map { $0 < own.version } ?? false : (version ?? 0) < own.version
            if stale { result.staleReads += 1 }
        }
    }

    private func write(
        _ index: Int, delete: Bool, step: Int, on connection: HTTPConnection, client: Int, into result: inout ClientResult
    ) async throws {
        if delete { result.deletes += 1 } else { result.writes += 1 }
        let path = "/v1/tables/\(DemoRun.tableName)/rows/\(Self.key(index))"
        let response: HTTPClientResponse
        do {
            response =
                delete
                ? try await connection.request("DELETE", path)
                : try await connection.request("PUT", path, body: Self.body(index, client: client, step: step))
        } catch let error as HTTPClientError {
            result.errors += 1
            result.lastError = "\(delete ? "DELETE" : "PUT"): \(error)"
            result.ambiguous.insert(index)
            return
        }
        switch response.status {
        case 200, 201:
            let body = Data(response.body)
            let version =
                delete
                ? (try? API.decode(API.DeleteReceipt.self, from: body))?.version
                : (try? API.decode(API.WriteReceipt.self, from: body))?.version
            guard let version else {
                result.errors += 1
                result.lastError = "an acknowledgement without a version: \(response.text.prefix(200))"
                return
            }
            result.acknowledged[index] = (version, delete)
            result.ambiguous.remove(index)
        case 404 where delete:
            // Gone already; if this client's last acknowledged write left it live, it was lost.
            if let own = result.acknowledged[index], !own.deleted, !result.ambiguous.contains(index) { result.staleReads += 1 }
        case 503 where response.text.contains("range_moving"):
            result.rangeMoving += 1
        default:
            result.errors += 1
            result.lastError = "\(delete ? "DELETE" : "PUT") \(response.status): \(response.text.prefix(200))"
        }
    }
}
