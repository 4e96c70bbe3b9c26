import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

extension HTTPAPITests {
    @Test func migrationsArePlannedRunAndReported() async throws {
        try await withAPI { client in
            for i in 0..<300 {
                _ = try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: #"{"n":\#(i)}"#))
            }
            let shard = try await client.execute(uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(string: #"{"id":"s5"}"#))
            #expect(shard.status == .created)

            let dry = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"kind":"add_shard","shard":"s5","dry_run":true}"#))
            #expect(dry.status == .ok)
            let plan = try #require(try json(dry)["plan"] as? [String: Any])
            let rows = try #require(plan["rows"] as? Int)
            #expect(rows > 20 && rows < 120, "about 1/5 of 300 rows should move, predicted \(rows)")
            #expect((plan["bytes"] as? Int ?? 0) > 0)
            #expect((plan["ideal_fraction"] as? Double ?? 0) == 0.2)
            #expect(try json(dry)["id"] == nil)

            let created = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(
                    string: #"{"kind":"add_shard","shard":"s5","options":{"bake_ms":100,"chunk_rows":50,"canary_step_ms":20}}"#))
            #expect(created.status == .accepted)
            let id = try #require(try json(created)["id"] as? String)

            #expect(try await waitForPhase("done", of: id, client) == "done")
            let status = try json(try await client.execute(uri: "/v1/migrations/\(id)", method: .get, headers: auth))
            #expect(status["rows_copied"] as? Int == rows)
            #expect((status["write_pauses"] as? [Any])?.isEmpty == false)
            #expect(status["throttle"] is [String: Any])
            let list = try json(try await client.execute(uri: "/v1/migrations", method: .get, headers: auth))
            #expect((list["migrations"] as? [[String: Any]])?.first?["id"] as? String == id)
            try expectError(
                try await client.execute(uri: "/v1/migrations/\(id)/rollback", method: .post, headers: auth), .conflict, "command_rejected")
            let cluster = try json(try await client.execute(uri: "/v1/cluster", method: .get, headers: auth))
            #expect(cluster["generation"] as? Int == 2)
            // Every row is still readable through the router.
            for i in stride(from: 0, to: 300, by: 7) {
                #expect(try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .get).status == .ok)
            }
        }
    }

    /// One migration at a time; the running one is held in bake (a long bake) so the refusal
    /// cannot race its end, then rolled back over HTTP.
    @Test func aSecondMigrationIsRefusedWhileOneRuns() async throws {
        try await withAPI { client in
            for i in 0..<100 {
                _ = try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: #"{"n":\#(i)}"#))
            }
            _ = try await client.execute(uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(string: #"{"id":"s5"}"#))
            let created = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"kind":"add_shard","shard":"s5","options":{"bake_ms":600000}}"#))
            #expect(created.status == .accepted)
            let id = try #require(try json(created)["id"] as? String)
            try expectError(
                try await client.execute(
                    uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: #"{"kind":"rebalance"}"#)),
                .conflict, "migration_active")
            let rollback = try await client.execute(uri: "/v1/migrations/\(id)/rollback", method: .post, headers: auth)
            #expect(rollback.status == .ok)
            #expect(try await waitForPhase("rolled_back", of: id, client) == "rolled_back")
            for i in 0..<100 {
                #expect(try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .get).status == .ok)
            }
            let next = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: #"{"kind":"rebalance","dry_run":true}"#))
            #expect(next.status == .ok)
        }
    }

    /// Admission is atomic: of concurrent identical creates exactly one is accepted, and the
    /// others start nothing (no hold, no journal). It once accepted 5 of 7 two-way races.
    @Test func concurrentCreatesAdmitExactlyOne() async throws {
        try await withAPI { client in
            for i in 0..<100 {
                _ = try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: #"{"n":\#(i)}"#))
            }
            _ = try await client.execute(uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(string: #"{"id":"s5"}"#))
            let body = #"{"kind":"add_shard","shard":"s5","options":{"bake_ms":600000}}"#
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let response = try await client.execute(
                            uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: body))
                        return (response.status, String(buffer: response.body))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0.0 == .accepted }.count == 1, "\(statuses.map(\.0))")
            #expect(statuses.filter { $0.0 == .conflict && $0.1.contains("migration_active") }.count == 7, "\(statuses.map(\.1))")
            let list = try json(try await client.execute(uri: "/v1/migrations", method: .get, headers: auth))
            let migrations = try #require(list["migrations"] as? [[String: Any]])
            #expect(migrations.count == 1)
            let id = try #require(migrations.first?["id"] as? String)
            #expect(try await client.execute(uri: "/v1/migrations/\(id)/rollback", method: .post, headers: auth).status == .ok)
            #expect(try await waitForPhase("rolled_back", of: id, client) == "rolled_back")
            // The slot is free again once the migration ended.
            let next = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: body))
            #expect(next.status == .accepted, "\(String(buffer: next.body))")
            let nextID = try #require(try json(next)["id"] as? String)
            #expect(try await client.execute(uri: "/v1/migrations/\(nextID)/rollback", method: .post, headers: auth).status == .ok)
            #expect(try await waitForPhase("rolled_back", of: nextID, client) == "rolled_back")
        }
    }

    /// Polls the migration until it reaches `phase` (at most 10 s); returns the last phase seen.
    func waitForPhase(_ phase: String, of id: String, _ client: any TestClientProtocol) async throws -> String {
        var seen = ""
        for _ in 0..<400 where seen != phase {
            try await Task.sleep(for: .milliseconds(25))
            seen = try json(try await client.execute(uri: "/v1/migrations/\(id)", method: .get, headers: auth))["phase"] as? String ?? ""
        }
        return seen
    }

    @Test func badMigrationRequestsAreRefused() async throws {
        try await withAPI { client in
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"kind":"grow"}"#, .badRequest, "invalid_kind"),
                (#"{"kind":"add_shard"}"#, .badRequest, "missing_shard"),
                (#"{"kind":"add_shard","shard":"s9"}"#, .notFound, "unknown_shard"),
                (#"{"kind":"add_shard","shard":"s1"}"#, .badRequest, "shard_in_map"),
                (#"{"kind":"remove_shard","shard":"Bad"}"#, .badRequest, "invalid_shard_id"),
                (#"{"kind":"rebalance","strategy":"teleport"}"#, .badRequest, "unsupported_strategy"),
                (#"{"kind":"rebalance","strategy":"cdc_backfill\u0000"}"#, .badRequest, "unsupported_strategy"),
                (#"{"kind":"rebalance","strategy":""}"#, .badRequest, "unsupported_strategy"),
                (#"{"kind":"rebalance"}"#, .badRequest, "no_rows"),
                (#"{"kind":"move_range","shard":"s1","start":"0x10","end":"0x05"}"#, .badRequest, "invalid_range"),
                (#"{"kind":"add_shard","shard":"s2","options":{"chunk_rows":0}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"max_rows_per_second":-5}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"latency_factor":0.5}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"canary_steps":[50,10]}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"canary_steps":[0,100]}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"gates":["before_lunch"]}}"#, .badRequest, "invalid_gate"),
                (#"{"kind":"add_shard","shard":"s2","options":{"gates":["before_baking"]}}"#, .badRequest, "invalid_gate"),
                (#"{"kind":"add_shard","shard":"s2","options":{"checks":["users"]}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"checks":["users.a.b"]}}"#, .badRequest, "invalid_option"),
                (#"{"kind":"add_shard","shard":"s2","options":{"checks":["ghost.amount"]}}"#, .badRequest, "unknown_table"),
                (#"{"kind":"add_shard","shard":"s2","options":{"verify_subranges":0}}"#, .badRequest, "invalid_option"),
                ("[]", .badRequest, "invalid_body"),
            ]
            for (body, status, code) in cases {
                try expectError(
                    try await client.execute(uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: body)), status,
                    code)
            }
            try expectError(try await client.execute(uri: "/v1/migrations", method: .post), .unauthorized, "unauthorized")
            try expectError(
                try await client.execute(uri: "/v1/migrations/nope", method: .get, headers: auth), .notFound, "unknown_migration")
            try expectError(
                try await client.execute(uri: "/v1/migrations/nope/pause", method: .post, headers: auth), .notFound, "unknown_migration")
            try expectError(
                try await client.execute(uri: "/v1/migrations/nope/explode", method: .post, headers: auth), .notFound, "unknown_command")
            try expectError(
                try await client.execute(uri: "/v1/migrations/nope/verification", method: .get, headers: auth), .notFound,
                "unknown_migration")
            try expectError(
                try await client.execute(uri: "/v1/migrations/nope/approve", method: .post, headers: auth), .notFound, "unknown_migration")
            try expectError(try await client.execute(uri: "/v1/migrations/nope/verification", method: .get), .unauthorized, "unauthorized")
        }
    }

    /// Gates hold the migration before the cutover and before cleanup until approved over HTTP,
    /// status says what it waits for and for how long, the bake is respected even when cleanup
    /// is approved early, and the verification report is served per move.
    @Test func gatesHoldTheMigrationUntilApprovedAndTheBakeIsRespected() async throws {
        try await withAPI { client in
            for i in 0..<300 {
                _ = try await client.execute(
                    uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: #"{"n":\#(i),"amount":\#(i).5}"#))
            }
            _ = try await client.execute(uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(string: #"{"id":"s5"}"#))
            let options = #"{"bake_ms":1500,"canary_step_ms":30,"gates":["before_cutover","before_cleanup"],"checks":["users.amount"]}"#
            let created = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"kind":"add_shard","shard":"s5","options":\#(options)}"#))
            #expect(created.status == .accepted)
            let id = try #require(try json(created)["id"] as? String)
            let uri = "/v1/migrations/\(id)"

            let waiting = try await waitForGate("before_cutover", of: id, client)
            #expect(waiting["phase"] as? String == "canary", "the canary ran and holds at its last step")
            try await Task.sleep(for: .milliseconds(400))
            let still = try json(try await client.execute(uri: uri, method: .get, headers: auth))
            #expect(still["phase"] as? String == "canary")
            let gate = try #require(still["awaiting_approval"] as? [String: Any])
            #expect((gate["waiting_ms"] as? Int ?? 0) >= 400)
            #expect(try json(try await client.execute(uri: "/v1/cluster", method: .get, headers: auth))["generation"] as? Int == 1)
            try expectError(
                try await client.execute(
                    uri: "\(uri)/approve", method: .post, headers: auth, body: ByteBuffer(string: #"{"gate":"before_lunch"}"#)),
                .badRequest,
                "invalid_gate")
            try expectError(
                try await client.execute(
                    uri: "\(uri)/approve", method: .post, headers: auth, body: ByteBuffer(string: #"{"gate":"before_copying"}"#)),
                .conflict, "command_rejected")
            #expect(try await client.execute(uri: "\(uri)/approve", method: .post, headers: auth).status == .ok)

            // Approve cleanup as soon as the bake starts: cleanup must still wait for the bake.
            #expect(try await waitForPhase("baking", of: id, client) == "baking")
            let early = try await client.execute(
                uri: "\(uri)/approve", method: .post, headers: auth, body: ByteBuffer(string: #"{"gate":"before_cleanup"}"#))
            #expect(early.status == .ok)
            #expect(try await waitForPhase("done", of: id, client) == "done")
            let status = try json(try await client.execute(uri: uri, method: .get, headers: auth))
            let phases = try #require(status["phases"] as? [[String: Any]])
            let at = { (name: String) in phases.first { $0["phase"] as? String == name }?["at_ms"] as? Int }
            let baking = try #require(at("baking"))
            let cleaning = try #require(at("cleaning_up"))
            #expect(cleaning - baking >= 1_500, "cleanup began \(cleaning - baking) ms into a 1,500 ms bake")
            #expect(status["approved"] as? [String] == ["before_cleanup", "before_cutover"])

            let report = try json(try await client.execute(uri: "\(uri)/verification", method: .get, headers: auth))
            let summary = try #require(report["summary"] as? [String: Any])
            #expect(summary["passed"] as? Bool == true)
            #expect(summary["rows_compared"] as? Int ?? 0 > 20)
            let aggregates = try #require(summary["aggregates"] as? [[String: Any]])
            #expect(aggregates.first?["matches"] as? Bool == true)
            let moves = try #require(report["moves"] as? [[String: Any]])
            #expect(moves.count == (status["moves"] as? Int))
            #expect(
                moves.allSatisfy {
                    ($0["subranges"] as? Int ?? 0) >= 1 && $0["clean"] as? Bool == true && $0["differences"] is [String: Int]
                })
        }
    }

    /// Polls (at most 10 s) until the migration waits at `gate`; returns the status then.
    func waitForGate(_ gate: String, of id: String, _ client: any TestClientProtocol) async throws -> [String: Any] {
        var status: [String: Any] = [:]
        for _ in 0..<400 {
            status = try json(try await client.execute(uri: "/v1/migrations/\(id)", method: .get, headers: auth))
            if (status["awaiting_approval"] as? [String: Any])?["gate"] as? String == gate { return status }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("the migration never waited at \(gate): \(status["phase"] ?? "?")")
        return status
    }
}
