import Foundation
import ReshardAPI
import ReshardClient
import Testing

/// A running migration's changed settings are in its journal: a server killed and started again
/// resumes the migration with them, not with the ones it was created with.
@Suite(.serialized, .timeLimit(.minutes(3))) struct MigrationSettingsResumeTests {
    static let token = "settings-resume-token-0123456789"
    static let auth = [("Authorization", "Bearer \(token)")]

    static func detail(_ id: String, _ admin: HTTPConnection) async throws -> API.MigrationDetail? {
        let response = try await admin.request("GET", "/v1/migrations/\(id)", headers: auth)
        guard case .detail(let detail) = try API.decode(API.MigrationStatus.self, from: Data(response.body)) else { return nil }
        return detail
    }

    @Test func aResumedMigrationKeepsItsChangedCeilingAndBake() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-settings")
        defer { scratch.close() }
        let (first, port) = try await scratch.startServing()
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        _ = try await admin.request("POST", "/v1/tables", headers: Self.auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        for n in 0..<30 { _ = try await admin.request("PUT", "/v1/tables/kv/rows/k\(n)", body: Array(#"{"v":1}"#.utf8)) }
        _ = try await admin.request("POST", "/v1/shards", headers: Self.auth, body: Array(#"{"id":"s5"}"#.utf8))
        let body = #"{"kind":"add_shard","shard":"s5","options":{"max_rows_per_second":100,"gates":["before_copying"]}}"#
        let created = try await admin.request("POST", "/v1/migrations", headers: Self.auth, body: Array(body.utf8))
        let id = try #require(try API.decode(API.MigrationCreated.self, from: Data(created.body)).id, "\(created.text)")
        var waiting = false
        for _ in 0..<500 where !waiting {
            waiting = try await Self.detail(id, admin)?.awaitingApproval?.gate == "before_copying"
            if !waiting { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(waiting)
        let change = try await admin.request(
            "POST", "/v1/migrations/\(id)/settings", headers: Self.auth + [("Content-Type", "application/json")],
            body: Array(#"{"max_rows_per_second":4321,"bake_ms":1234}"#.utf8))
        #expect(change.status == 200, "\(change.text)")
        await admin.close()
        first.killNow()

        let (second, again) = try await scratch.startServing()
        let resumed = try await HTTPConnection.connect(host: "127.0.0.1", port: again)
        defer { Task { await resumed.close() } }
        let detail = try #require(try await Self.detail(id, resumed))
        #expect(detail.throttle.maxRowsPerSecond == 4_321 && detail.bakeMs == 1_234, "\(detail.throttle), bake \(detail.bakeMs)")
        #expect(detail.awaitingApproval?.gate == "before_copying")
        await second.stop()
    }
}
