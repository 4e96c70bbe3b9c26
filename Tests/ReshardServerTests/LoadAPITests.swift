import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import Testing

extension HTTPAPITests {
    /// `GET /v1/load`: the admin token, each shard of the map, the most requested key on top,
    /// and a 400 for every malformed parameter (the report is read-only: nothing to write).
    @Test func theLoadReportNamesTheHotKeyAndRefusesBadParameters() async throws {
        let auth = auth
        try await withAPI { client in
            for index in 0..<30 {
                let put = try await client.execute(
                    uri: "/v1/tables/users/rows/hot", method: .put, body: ByteBuffer(string: #"{"n":\#(index)}"#))
                #expect([.ok, .created].contains(put.status))
            }
            for index in 0..<10 {
                _ = try await client.execute(uri: "/v1/tables/users/rows/u\(index)", method: .put, body: ByteBuffer(string: "{}"))
            }
            _ = try await client.execute(uri: "/v1/tables/users/rows/missing", method: .get)
            try expectError(try await client.execute(uri: "/v1/load", method: .get), .unauthorized, "unauthorized")

            let response = try await client.execute(uri: "/v1/load?top=3&signal=bytes&windows=1", method: .get, headers: auth)
            #expect(response.status == .ok)
            let report = try API.decode(API.LoadReport.self, from: Data(buffer: response.body))
            #expect(report.signal == "bytes" && report.windows <= 1 && report.windowMs == 1_000)
            #expect(report.shards.count == 4 && report.shards.allSatisfy { $0.topKeys.count <= 3 })
            let keys = report.shards.flatMap(\.topKeys)
            let hot = try #require(keys.first { $0.key == "users/hot" })
            // Keys are counted in 10 s periods and a report merges the current and the last, so on
            // a slow machine the first writes may have aged out: the count is at most 30, never
            // more, and the hot key still ranks first on its shard.
            #expect(hot.count <= 30 && hot.count > 1 && hot.error == 0, "\(keys)")
            let hotShard = try #require(report.shards.first { $0.topKeys.contains { $0.key == "users/hot" } })
            #expect(hotShard.topKeys.first?.key == "users/hot", "\(hotShard.topKeys)")
            #expect(keys.allSatisfy { $0.count <= 30 })
            #expect(keys.contains { $0.key == "users/missing" }, "a read that found nothing still cost its shard")
            #expect(!report.finding.advice.isEmpty)

            let bad: [(String, String)] = [
                ("signal=rows", "invalid_signal"), ("signal=", "invalid_signal"), ("signal=%00", "invalid_signal"),
                ("top=0", "invalid_top"), ("top=65", "invalid_top"), ("top=-1", "invalid_top"), ("top=+5", "invalid_top"),
                ("top=18446744073709551616", "invalid_top"), ("top=1e1", "invalid_top"), ("windows=0", "invalid_windows"),
                ("windows=16", "invalid_windows"), ("signal=bytes&signal=time", "invalid_query"), ("top=%zz", "invalid_query"),
                ("signal=%C3%28", "invalid_query"),
            ]
            for (query, code) in bad {
                try expectError(try await client.execute(uri: "/v1/load?\(query)", method: .get, headers: auth), .badRequest, code)
            }
            let head = try await client.execute(uri: "/v1/load", method: .head, headers: auth)
            #expect(head.status == .ok && head.body.readableBytes == 0)
            let post = try await client.execute(uri: "/v1/load", method: .post, headers: auth)
            #expect(post.status == .methodNotAllowed)
        }
    }

    /// The load-aware kinds refuse what they cannot do with a 4xx and a code, and start nothing:
    /// a signal where none applies, weights without a mix, a mix without weights or with bad
    /// weights, and (on a router with no load yet) nothing to weigh or split.
    @Test func loadAwareMigrationsRefuseBadRequestsAndStartNothing() async throws {
        let auth = auth
        try await withAPI { client in
            let bad: [(String, HTTPResponse.Status, String)] = [
                (#"{"kind":"add_shard","shard":"s1","signal":"requests"}"#, .badRequest, "invalid_signal"),
                (#"{"kind":"move_range","start":"0x0","end":"0x10","shard":"s1","weights":{"rows":1}}"#, .badRequest, "invalid_signal"),
                (#"{"kind":"rebalance","signal":"rowz"}"#, .badRequest, "invalid_signal"),
                (#"{"kind":"rebalance","signal":"requests\u0000"}"#, .badRequest, "invalid_signal"),
                (#"{"kind":"rebalance","signal":"mix"}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"requests","weights":{"rows":1}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","weights":{"rows":1}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"mix","weights":{}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"mix","weights":{"rows":0,"requests":0}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"mix","weights":{"rows":-1,"requests":1}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"mix","weights":{"requests":1001}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"mix","weights":{"requests":1e999}}"#, .badRequest, "invalid_body"),
                (#"{"kind":"rebalance","signal":"mix","weights":{"requests":"1"}}"#, .badRequest, "invalid_body"),
                (#"{"kind":"split_hot_range","signal":"rows"}"#, .badRequest, "invalid_signal"),
                (#"{"kind":"split_hot_range","signal":"mix"}"#, .badRequest, "invalid_signal"),
                (#"{"kind":"split_hot_range","weights":{"requests":1}}"#, .badRequest, "invalid_weights"),
                (#"{"kind":"rebalance","signal":"requests"}"#, .conflict, "no_load_data"),
                (#"{"kind":"rebalance","signal":"bytes","dry_run":true}"#, .conflict, "no_load_data"),
                (#"{"kind":"split_hot_range"}"#, .conflict, "no_hot_range"),
            ]
            for (body, status, code) in bad {
                let response = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: body))
                try expectError(response, status, code)
            }
            let list = try await client.execute(uri: "/v1/migrations", method: .get, headers: auth)
            #expect(String(buffer: list.body).contains(#""migrations":[]"#), "nothing started")
        }
    }
}
