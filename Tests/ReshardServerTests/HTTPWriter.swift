import Foundation
import ReshardAPI
import ReshardClient
import ReshardCore
import ReshardTestKit
import Synchronization

/// A stop signal shared with running tasks.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// Keeps the clients quiet while the migration copies. The copy throttle holds the copy back for
/// seconds at a time once the foreground p99 passes twice what it was when copying started, and
/// on two cores in a debug build any migration does that to any load (each throttled round still
/// tails and journals the whole machine); the HTTP API cannot turn the throttle off as the
/// in-process tests do (`latencyFactor: nil`). Writes race the copy in `LiveMigrationTests` and
/// `RollbackTests`; here the clients write in every other phase and across every crash.
final class CopyQuiet: Sendable {
    private let state = Mutex<(requested: Bool, phase: String?)>((false, nil))

    /// From now on, quiet until the migration is seen past copying (the phase seen so far may be
    /// an earlier migration's).
    func migrationRequested() { state.withLock { $0 = (true, nil) } }

    /// Whether the clients should hold off now (also while the server is unreachable).
    var isQuiet: Bool {
        let (requested, phase) = state.withLock { ($0.requested, $0.phase) }
        return requested && [nil, "preparing", "copying"].contains(phase)
    }

    /// Polls the phase of the migration under way (else the last one listed) until `stop`,
    /// through whichever of `ports` answers.
    func watch(ports: [Int], token: String, stop: StopFlag) async {
        var connection: HTTPConnection?
        var next = 0
        for _ in 0..<100_000 where !stop.isSet {
            var phase: String?
            if connection == nil {
                connection = try? await HTTPConnection.connect(host: "127.0.0.1", port: ports[next % ports.count], timeout: .seconds(2))
                next += 1
            }
            if let open = connection {
                if let response = try? await open.request("GET", "/v1/migrations", headers: [("Authorization", "Bearer \(token)")]) {
                    let phases = (try? API.decode(API.MigrationList.self, from: Data(response.body)))?.migrations.map(\.phase) ?? []
                    phase = phases.first { !["done", "rolled_back", "failed"].contains($0) } ?? phases.last
                } else {
                    await open.close()
                    connection = nil
                }
            }
            state.withLock { $0.phase = phase }
            try? await Task.sleep(for: .milliseconds(50))
        }
        await connection?.close()
    }
}

/// One HTTP client that puts, deletes and reads its own keys in a seeded order, each operation
/// through a router picked at random from `ports` (so a read may go to another router than the
/// write before it), reconnecting (with a bounded number of steps) while a server is down. Its
/// keys are its own and its operations sequential, so `ledger` keeps each key's last
/// acknowledgement (`.lastAcknowledged`).
struct HTTPWriter: Sendable {
    let keys: [String]
    let ports: [Int]
    let seed: UInt64
    let ledger: Ledger
    let stop: StopFlag
    let quiet: CopyQuiet

    func run() async {
        var random = SeededRandom(seed: seed)
        var connections: [HTTPConnection?] = Array(repeating: nil, count: ports.count)
        var target = 0
        for _ in 0..<200_000 where !stop.isSet {
            if quiet.isQuiet {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            guard let open = connections[target] else {
                connections[target] = try? await HTTPConnection.connect(host: "127.0.0.1", port: ports[target], timeout: .seconds(2))
                if connections[target] == nil {
                    try? await Task.sleep(for: .milliseconds(50))
                    target = Int(random.next() % UInt64(ports.count))
                }
                continue
            }
            let pk = keys[Int(random.next() % UInt64(keys.count))]
            let roll = random.next() % 10
            let operation: Ledger.Operation? = roll < 2 ? .delete : roll < 7 ? .put : nil
            // A group field that changes on most writes: a table placed by it moves rows then.
            let group = random.next() % 16
            do {
                try await step(open, pk: pk, operation: operation, group: group)
                ledger.count("answered by \(ports[target])")
            } catch {
                // The connection broke (the server was killed); `write` noted a write whose outcome is unknown.
                await open.close()
                connections[target] = nil
            }
            target = Int(random.next() % UInt64(ports.count))
        }
        for connection in connections { await connection?.close() }
    }

    private func step(_ connection: HTTPConnection, pk: String, operation: Ledger.Operation?, group: UInt64) async throws {
        let path = "/v1/tables/kv/rows/\(pk)"
        switch operation {
        case .put:
            let response = try await write(connection, "PUT", path, pk: pk, operation: .put, group: group)
            if try record(response, pk: pk, operation: .put) { try await readBack(connection, pk: pk) }
        case .delete:
            let response = try await write(connection, "DELETE", path, pk: pk, operation: .delete, group: group)
            if response.status == 404 {
                if let problem = ledger.contradiction(pk, read: nil) { ledger.violation("DELETE answered 404: \(problem)") }
                return
            }
            _ = try record(response, pk: pk, operation: .delete)
        case nil:
            try await readBack(connection, pk: pk)
        }
    }

    /// Sends a write; if no answer comes back, the write may or may not have happened.
    private func write(
        _ connection: HTTPConnection, _ method: String, _ path: String, pk: String, operation: Ledger.Operation, group: UInt64
    ) async throws -> HTTPClientResponse {
        do {
            let body: [UInt8]? = operation == .put ? Array("{\"seed\":\(seed),\"g\":\"g\(group)\"}".utf8) : nil
            return try await connection.request(method, path, body: body, timeout: .seconds(10))
        } catch {
            ledger.uncertain(pk, operation)
            throw error
        }
    }

    /// Records a write's answer; true when it was acknowledged.
    private func record(_ response: HTTPClientResponse, pk: String, operation: Ledger.Operation) throws -> Bool {
        switch response.status {
        case 200,
            201 where operation != .delete:
            let body = Data(response.body)
            let version =
                operation == .delete
                ? try API.decode(API.DeleteReceipt.self, from: body).version : try API.decode(API.WriteReceipt.self, from: body).version
            ledger.acknowledge(pk, version: version, deleted: operation == .delete)
            return true
        case 503 where response.text.contains("\"range_moving\""):
            ledger.count("refused: range_moving")  // held past the bound or fenced: not written
        case 503:
            ledger.uncertain(pk, operation)
        default:
            ledger.violation("\(operation) \(pk): unexpected \(response.status) \(response.text)")
        }
        return false
    }

    private func readBack(_ connection: HTTPConnection, pk: String) async throws {
        let response = try await connection.request("GET", "/v1/tables/kv/rows/\(pk)", timeout: .seconds(10))
        let version: UInt64?
        switch response.status {
        case 200: version = try API.decode(API.RowMetadata.self, from: Data(response.body)).version
        case 404: version = nil
        case 503: return
        default:
            ledger.violation("GET \(pk): unexpected \(response.status) \(response.text)")
            return
        }
        ledger.count("reads")
        if let problem = ledger.contradiction(pk, read: version.map { Ledger.Read(version: $0) }) { ledger.violation("read: \(problem)") }
    }
}
