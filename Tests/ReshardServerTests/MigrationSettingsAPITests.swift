import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// `POST /v1/migrations/{id}/settings`: a running migration's copy ceiling and bake change, the
/// status shows them, and every bad request is refused with nothing changed.
extension HTTPAPITests {
    /// Starts an add_shard held at `before_copying` (running, nothing copied) and returns its id.
    func heldMigration(_ client: any TestClientProtocol) async throws -> String {
        for i in 0..<50 {
            _ = try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: #"{"n":\#(i)}"#))
        }
        _ = try await client.execute(uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(string: #"{"id":"s5"}"#))
        let created = try await client.execute(
            uri: "/v1/migrations", method: .post, headers: auth,
            body: ByteBuffer(
                string:
                    #"{"kind":"add_shard","shard":"s5","options":{"bake_ms":600000,"max_rows_per_second":100,"gates":["before_copying"]}}"#
            ))
        #expect(created.status == .accepted)
        let id = try #require(try json(created)["id"] as? String)
        _ = try await waitForGate("before_copying", of: id, client)
        return id
    }

    func settings(_ id: String, _ body: String, _ client: any TestClientProtocol) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/migrations/\(id)/settings", method: .post, headers: auth + [.contentType: "application/json"],
            body: ByteBuffer(string: body))
    }

    /// The ceiling and the bake in force, as the status reports them.
    func ceilingAndBake(_ id: String, _ client: any TestClientProtocol) async throws -> (ceiling: Int?, bake: Int?) {
        let status = try json(try await client.execute(uri: "/v1/migrations/\(id)", method: .get, headers: auth))
        return ((status["throttle"] as? [String: Any])?["max_rows_per_second"] as? Int, status["bake_ms"] as? Int)
    }

    @Test func aRunningMigrationsCeilingAndBakeChange() async throws {
        try await withAPI { client in
            let id = try await heldMigration(client)
            #expect(try await ceilingAndBake(id, client) == (100, 600_000))

            let changed = try await settings(id, #"{"max_rows_per_second":2500,"bake_ms":1500}"#, client)
            #expect(changed.status == .ok, "\(String(buffer: changed.body))")
            let answer = try json(changed)
            #expect(answer["id"] as? String == id)
            #expect(answer["max_rows_per_second"] as? Int == 2_500 && answer["bake_ms"] as? Int == 1_500)
            #expect(answer.keys.contains("bake_until_ms") && answer["phase"] is String)
            #expect(try await ceilingAndBake(id, client) == (2_500, 1_500))

            // One member alone leaves the other as it is.
            #expect(try await settings(id, #"{"bake_ms":0}"#, client).status == .ok)
            #expect(try await ceilingAndBake(id, client) == (2_500, 0))

            let rollback = try await client.execute(uri: "/v1/migrations/\(id)/rollback", method: .post, headers: auth)
            #expect(rollback.status == .ok)
            #expect(try await waitForPhase("rolled_back", of: id, client) == "rolled_back")
            try expectError(try await settings(id, #"{"max_rows_per_second":10}"#, client), .conflict, "command_rejected")
            #expect(try await ceilingAndBake(id, client) == (2_500, 0))
        }
    }

    @Test func badSettingsAreRefusedAndChangeNothing() async throws {
        try await withAPI { client in
            let id = try await heldMigration(client)
            let cases: [(String, String)] = [
                (#"{"max_rows_per_second":0}"#, "invalid_option"),
                (#"{"max_rows_per_second":-1}"#, "invalid_option"),
                (#"{"max_rows_per_second":1000001}"#, "invalid_option"),
                (#"{"max_rows_per_second":18446744073709551615}"#, "invalid_option"),
                (#"{"max_rows_per_second":9223372036854775807}"#, "invalid_option"),
                (#"{"max_rows_per_second":1.5}"#, "invalid_option"),
                (#"{"max_rows_per_second":"500"}"#, "invalid_option"),
                (#"{"max_rows_per_second":null}"#, "invalid_option"),
                (#"{"max_rows_per_second":1e999}"#, "invalid_option"),
                (#"{"bake_ms":-1}"#, "invalid_option"),
                (#"{"bake_ms":18446744073709551615}"#, "invalid_option"),
                (#"{"bake_ms":31536000001}"#, "invalid_option"),
                (#"{"bake_ms":"soon"}"#, "invalid_option"),
                (#"{"bake_ms":true}"#, "invalid_option"),
                (#"{"bake_ms":1000,"bake_msec":1}"#, "invalid_option"),
                (#"{"chunk_rows":10}"#, "invalid_option"),
                // A good value beside a bad one changes nothing either.
                (#"{"max_rows_per_second":5,"bake_ms":-5}"#, "invalid_option"),
                (#"{}"#, "invalid_body"),
                (#"[]"#, "invalid_body"),
                (#"{"bake_ms":1,"bake_ms":2}"#, "invalid_body"),
                ("", "invalid_body"),
                ("not json", "invalid_body"),
            ]
            for (body, code) in cases {
                try expectError(try await settings(id, body, client), .badRequest, code)
            }
            #expect(try await ceilingAndBake(id, client) == (100, 600_000))
            let wrongType = try await client.execute(
                uri: "/v1/migrations/\(id)/settings", method: .post, headers: auth + [.contentType: "text/plain"],
                body: ByteBuffer(string: #"{"bake_ms":1}"#))
            #expect(wrongType.status == .unsupportedMediaType)
            let anonymous = try await client.execute(
                uri: "/v1/migrations/\(id)/settings", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"bake_ms":1}"#))
            #expect(anonymous.status == .unauthorized)
            try expectError(try await settings("m-none", #"{"bake_ms":1}"#, client), .notFound, "unknown_migration")
            #expect(try await ceilingAndBake(id, client) == (100, 600_000))
        }
    }
}

extension HTTPFields {
    static func + (left: HTTPFields, right: HTTPFields) -> HTTPFields {
        var fields = left
        fields.append(contentsOf: right)
        return fields
    }
}
