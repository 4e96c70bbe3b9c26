import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

extension HTTPAPITests {
    /// `change_shard_key` over HTTP as an operator drives it: the dry run's counts, the refusals
    /// (each a 4xx JSON error with nothing started), then the live change and reads by primary
    /// key and by the new key afterwards.
    @Test func aShardKeyIsChangedOverHTTP() async throws {
        try await withAPI { client in
            for i in 0..<60 {
                let body = #"{"n":\#(i),"team":"t\#(i % 5)"}"#
                #expect(
                    try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: body)).status.code
                        < 300)
            }
            _ = try await client.execute(uri: "/v1/tables/users/rows/lost", method: .put, body: ByteBuffer(string: #"{"team":[1]}"#))

            let dry = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"kind":"change_shard_key","table":"users","shard_key":"team","dry_run":true}"#))
            #expect(dry.status == .ok, "\(String(buffer: dry.body))")
            let plan = try #require(try json(dry)["plan"] as? [String: Any])
            #expect(plan["kind"] as? String == "change_shard_key")
            let layout = try #require(plan["layout"] as? [String: Any])
            #expect(layout["rows"] as? Int == 61)
            #expect(layout["unplaceable"] as? Int == 1)
            #expect(layout["unplaceable_examples"] as? [String] == ["lost"])
            #expect((layout["rows_per_shard"] as? [String: Int])?.values.reduce(0, +) == 60)
            let phases = (plan["steps"] as? [[String: Any]])?.compactMap { $0["phase"] as? String } ?? []
            #expect(phases.contains("canary") && !phases.contains("serving_reads") && phases.contains("cutting_over"))

            let long = String(repeating: "a", count: 64)
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"kind":"change_shard_key","table":"users","shard_key":"team"}"#, .conflict, "rows_without_shard_key"),
                (#"{"kind":"change_shard_key","shard_key":"team"}"#, .badRequest, "missing_table"),
                (#"{"kind":"change_shard_key","table":"users"}"#, .badRequest, "missing_shard_key"),
                (#"{"kind":"change_shard_key","table":"Users","shard_key":"team"}"#, .badRequest, "invalid_table_name"),
                (#"{"kind":"change_shard_key","table":"users\u0000","shard_key":"team"}"#, .badRequest, "invalid_table_name"),
                (#"{"kind":"change_shard_key","table":"","shard_key":"team"}"#, .badRequest, "invalid_table_name"),
                (#"{"kind":"change_shard_key","table":"\#(long)","shard_key":"team"}"#, .badRequest, "invalid_table_name"),
                (#"{"kind":"change_shard_key","table":"users__2","shard_key":"team"}"#, .notFound, "unknown_table"),
                (#"{"kind":"change_shard_key","table":"ghost","shard_key":"team"}"#, .notFound, "unknown_table"),
                (#"{"kind":"change_shard_key","table":"users","shard_key":"te\u0000am"}"#, .badRequest, "invalid_shard_key"),
                (#"{"kind":"change_shard_key","table":"users","shard_key":"\#(long)"}"#, .badRequest, "invalid_shard_key"),
                (#"{"kind":"change_shard_key","table":"users","shard_key":""}"#, .badRequest, "invalid_shard_key"),
                (#"{"kind":"change_shard_key","table":"users","shard_key":"id"}"#, .badRequest, "same_shard_key"),
                (#"{"kind":"change_shard_key","table":"users","shard_key":7}"#, .badRequest, "invalid_body"),
                (#"{"kind":"change_shard_key","table":"orders","shard_key":"id"}"#, .badRequest, "shard_key_not_addressable"),
            ]
            for (body, status, code) in cases {
                try expectError(
                    try await client.execute(uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: body)), status,
                    code)
            }
            let none = try json(try await client.execute(uri: "/v1/migrations", method: .get, headers: auth))
            #expect((none["migrations"] as? [Any])?.isEmpty == true, "a refused request starts nothing")

            // The row gets a key; a strategy other than copy-and-catch-up is refused, nothing started.
            _ = try await client.execute(uri: "/v1/tables/users/rows/lost", method: .put, body: ByteBuffer(string: #"{"team":"t1"}"#))
            try expectError(
                try await client.execute(
                    uri: "/v1/migrations", method: .post, headers: auth,
                    body: ByteBuffer(string: #"{"kind":"change_shard_key","table":"users","shard_key":"team","strategy":"dual_write"}"#)),
                .badRequest, "invalid_option")
            let created = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(
                    string:
                        #"{"kind":"change_shard_key","table":"users","shard_key":"team","options":{"bake_ms":100,"chunk_rows":20,"canary_step_ms":20}}"#
                ))
            #expect(created.status == .accepted, "\(String(buffer: created.body))")
            let id = try #require(try json(created)["id"] as? String)
            #expect(try await waitForPhase("done", of: id, client) == "done")

            // By primary key as before; by the new key, exactly that team's rows.
            let row = try await client.execute(uri: "/v1/tables/users/rows/u7", method: .get)
            #expect(row.status == .ok)
            #expect(String(buffer: row.body).contains(#""team":"t2""#))
            let listed = try json(try await client.execute(uri: "/v1/tables/users/rows?shard_key=t1&limit=100", method: .get))
            let pks = Set(((listed["rows"] as? [[String: Any]]) ?? []).compactMap { $0["pk"] as? String })
            #expect(pks == Set((0..<60).filter { $0 % 5 == 1 }.map { "u\($0)" } + ["lost"]))
            let cluster = try json(try await client.execute(uri: "/v1/cluster", method: .get, headers: auth))
            let users = (cluster["tables"] as? [[String: Any]])?.first { $0["name"] as? String == "users" }
            #expect(users?["shard_key"] as? String == "team")
        }
    }
}
