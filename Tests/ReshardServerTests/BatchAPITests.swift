import Foundation
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import Testing

/// `rows:batch_get` and `rows:batch_write` over HTTP: per-item answers in order, rows stored as
/// the exact bytes sent, and malformed batches refused whole with nothing written.
@Suite(.timeLimit(.minutes(2))) struct BatchAPITests {
    let api = HTTPAPITests()

    func post(_ client: any TestClientProtocol, _ uri: String, _ body: String) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: body))
    }

    func items(_ response: TestResponse) throws -> [[String: Any]] {
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        return try api.json(response)["items"] as? [[String: Any]] ?? []
    }

    @Test func writesThenReadsComeBackPerItemInOrder() async throws {
        try await api.withAPI { client in
            // 60 rows over the 4 shards, one of them with odd but valid text kept byte for byte.
            let odd = #"{ "n" : 1.50 , "s":"\u00e9\ud83d\ude00" }"#
            var writes = (0..<59).map { #"{"op":"put","pk":"u\#($0)","row":{"i":\#($0)}}"# }
            writes.append(#"{"op":"put","pk":"odd","row":\#(odd)   }"#)
            let written = try items(
                try await post(client, "/v1/tables/users/rows:batch_write", #"{"items":[\#(writes.joined(separator: ","))]}"#))
            #expect(written.count == 60)
            #expect(written.map { $0["pk"] as? String } == (0..<59).map { "u\($0)" } + ["odd"])
            #expect(written.allSatisfy { $0["status"] as? Int == 201 && ($0["version"] as? Int ?? 0) > 0 })
            #expect(Set(written.compactMap { $0["shard"] as? String }).count == 4)

            let reads = ["odd", "u3", "missing", "u3"].map { #"{"pk":"\#($0)"}"# }.joined(separator: ",")
            let response = try await post(client, "/v1/tables/users/rows:batch_get", #"{"items":[\#(reads)]}"#)
            #expect(String(buffer: response.body).contains(#""row":\#(odd)}"#))
            let read = try items(response)
            #expect(read.map { $0["status"] as? Int } == [200, 200, 404, 200])
            #expect((read[2]["error"] as? [String: Any])?["code"] as? String == "not_found")
            #expect((read[1]["row"] as? [String: Int]) == ["i": 3])
            let single = try await client.execute(uri: "/v1/tables/users/rows/odd", method: .get)
            #expect(String(buffer: single.body).contains(#""row":\#(odd)}"#))
        }
    }

    @Test func itemsSucceedOrFailOnTheirOwn() async throws {
        try await api.withAPI { client in
            let first = try items(
                try await post(client, "/v1/tables/users/rows:batch_write", #"{"items":[{"op":"put","pk":"a","row":{}}]}"#))
            let version = try #require(first.first?["version"] as? Int)
            let batch = """
                {"items":[
                  {"op":"put","pk":"a","row":{"n":2},"if_match":"\\"\(version)\\""},
                  {"op":"put","pk":"b","row":{"id":"other"}},
                  {"op":"put","pk":"c","row":{},"if_none_match":"*"},
                  {"op":"delete","pk":"d"},
                  {"op":"put","pk":"e","row":{},"if_match":"*"}
                ]}
                """
            let answers = try items(try await post(client, "/v1/tables/users/rows:batch_write", batch))
            #expect(answers.map { $0["status"] as? Int } == [200, 400, 201, 404, 412])
            #expect((answers[1]["error"] as? [String: Any])?["code"] as? String == "pk_mismatch")
            #expect((answers[4]["error"] as? [String: Any])?["code"] as? String == "precondition_failed")
            // The stale condition now fails; the delete of a live row says so.
            let again = """
                {"items":[{"op":"put","pk":"a","row":{"n":3},"if_match":"\\"\(version)\\""},{"op":"delete","pk":"c","if_match":"*"}]}
                """
            let second = try items(try await post(client, "/v1/tables/users/rows:batch_write", again))
            #expect(second.map { $0["status"] as? Int } == [412, 200])
            #expect(second[1]["deleted"] as? Bool == true)
            // Orders are placed by customer: a put carries it in its row, a delete and a read name it.
            let orders = try items(
                try await post(
                    client, "/v1/tables/orders/rows:batch_write",
                    #"{"items":[{"op":"put","pk":"o1","row":{"customer_id":"c7"}},{"op":"delete","pk":"o2","shard_key":"c7"},{"op":"put","pk":"o3","row":{}}]}"#
                ))
            #expect(orders.map { $0["status"] as? Int } == [201, 404, 400])
            let listed = try items(
                try await post(client, "/v1/tables/orders/rows:batch_get", #"{"items":[{"pk":"o1","shard_key":"c7"},{"pk":"o1"}]}"#))
            #expect(listed.map { $0["status"] as? Int } == [200, 400])
        }
    }

    @Test func malformedBatchesAreRefusedWholeAndWriteNothing() async throws {
        try await api.withAPI { client in
            let tooMany = "{\"items\":[" + (0...100).map { #"{"op":"delete","pk":"x\#($0)"}"# }.joined(separator: ",") + "]}"
            let cases: [(String, String)] = [
                ("", "invalid_body"), ("[]", "invalid_body"), (#"{"items":{}}"#, "invalid_body"), (#"{"items":[],"x":1}"#, "invalid_body"),
                (#"{"items":[1]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"ok","row":{}},{"op":"put","pk":"a"}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"ok","row":[]}]}"#, "invalid_item"),
                (#"{"items":[{"op":"upsert","pk":"ok"}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"ok","row":{},"extra":1}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"","row":{}}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"a\u0000b","row":{}}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"ok","row":{},"if_match":"17"}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"ok","row":{},"if_match":17}]}"#, "invalid_item"),
                (#"{"items":[{"op":"delete","pk":"ok","shard_key":true}]}"#, "invalid_item"),
                (#"{"items":[{"op":"put","pk":"ok","row":{"a":1,"a":2}}]}"#, "invalid_body"),
                (#"{"items":[{"op":"put","pk":"ok","row":{}},{"op":"delete","pk":"ok"}]}"#, "duplicate_item"),
                (#"{"items":[{"op":"put","pk":18446744073709551616,"row":{}}]}"#, "invalid_item"),
                (tooMany, "batch_too_large"),
            ]
            for (body, code) in cases {
                try api.expectError(try await post(client, "/v1/tables/users/rows:batch_write", body), .badRequest, code)
            }
            let notUTF8 = ByteBuffer(bytes: Array(#"{"items":[{"op":"put","pk":"ok","row":{"s":""#.utf8) + [0xFF] + Array(#""}}]}"#.utf8))
            try api.expectError(
                try await client.execute(uri: "/v1/tables/users/rows:batch_write", method: .post, body: notUTF8), .badRequest,
                "invalid_body")
            try api.expectError(
                try await post(client, "/v1/tables/users/rows:batch_get", #"{"items":[{"pk":"a","op":"put"}]}"#), .badRequest,
                "invalid_item")
            try api.expectError(try await post(client, "/v1/tables/nope/rows:batch_get", #"{"items":[]}"#), .notFound, "unknown_table")
            try api.expectError(
                try await post(client, "/v1/tables/Bad/rows:batch_write", #"{"items":[]}"#), .badRequest, "invalid_table_name")
            try api.expectError(
                try await client.execute(uri: "/v1/tables/users/rows:batch_get", method: .get), .methodNotAllowed, "method_not_allowed")
            try api.expectError(
                try await client.execute(
                    uri: "/v1/tables/users/rows:batch_write", method: .post, headers: [.contentType: "text/plain"],
                    body: ByteBuffer(string: "{}")),
                .unsupportedMediaType, "unsupported_media_type")
            // Nothing of any refused batch was written.
            let read = try items(
                try await post(client, "/v1/tables/users/rows:batch_get", #"{"items":[{"pk":"ok"},{"pk":"a"},{"pk":"x0"}]}"#))
            #expect(read.map { $0["status"] as? Int } == [404, 404, 404])
            #expect(try items(try await post(client, "/v1/tables/users/rows:batch_write", #"{"items":[]}"#)).isEmpty)
        }
    }
}
