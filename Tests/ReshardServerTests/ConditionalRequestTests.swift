import Foundation
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import Testing

/// `ETag`, `If-Match`, `If-None-Match`, 201 with `Location`: conditional requests on rows over
/// HTTP, hostile header values included.
@Suite(.timeLimit(.minutes(2))) struct ConditionalRequestTests {
    let api = HTTPAPITests()

    func put(
        _ client: any TestClientProtocol, _ uri: String, _ body: String, _ headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .put, headers: headers, body: ByteBuffer(string: body))
    }

    func version(_ response: TestResponse) throws -> UInt64 {
        try API.decode(API.WriteReceipt.self, from: Data(buffer: response.body)).version
    }

    @Test func aCreatingPutAnswers201WithLocationAndEveryRowAnswerHasItsETag() async throws {
        try await api.withAPI { client in
            let created = try await put(client, "/v1/tables/users/rows/a%20b%2F%C3%A9", "{}")
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/v1/tables/users/rows/a%20b%2F%C3%A9")
            let first = try version(created)
            #expect(created.headers[.eTag] == "\"\(first)\"")

            let replaced = try await put(client, "/v1/tables/users/rows/a%20b%2F%C3%A9", #"{"n":1}"#)
            #expect(replaced.status == .ok)
            #expect(replaced.headers[.location] == nil)
            let second = try version(replaced)
            #expect(replaced.headers[.eTag] == "\"\(second)\"")

            let read = try await client.execute(uri: "/v1/tables/users/rows/a%20b%2F%C3%A9", method: .get)
            #expect(read.headers[.eTag] == "\"\(second)\"")
            let head = try await client.execute(uri: "/v1/tables/users/rows/a%20b%2F%C3%A9", method: .head)
            #expect(head.status == .ok && head.headers[.eTag] == "\"\(second)\"" && head.body.readableBytes == 0)

            // Deleted, then written again: created anew.
            #expect(try await client.execute(uri: "/v1/tables/users/rows/a%20b%2F%C3%A9", method: .delete).status == .ok)
            #expect(try await put(client, "/v1/tables/users/rows/a%20b%2F%C3%A9", "{}").status == .created)
        }
    }

    @Test func ifMatchGuardsAReadModifyWrite() async throws {
        try await api.withAPI { client in
            let v1 = try version(try await put(client, "/v1/tables/users/rows/c", #"{"n":1}"#))
            let v2 = try version(try await put(client, "/v1/tables/users/rows/c", #"{"n":2}"#, [.ifMatch: "\"\(v1)\""]))
            // The stale tag is refused and nothing is written.
            let stale = try await put(client, "/v1/tables/users/rows/c", #"{"n":99}"#, [.ifMatch: "\"\(v1)\""])
            try api.expectError(stale, .preconditionFailed, "precondition_failed")
            let read = try await client.execute(uri: "/v1/tables/users/rows/c", method: .get)
            #expect(try api.json(read)["row"] as? [String: Int] == ["n": 2])
            // A list naming the current version, and `*`.
            let listed = try await put(client, "/v1/tables/users/rows/c", #"{"n":3}"#, [.ifMatch: "\"1\", \"\(v2)\" ,\"x\""])
            #expect(listed.status == .ok)
            #expect(try await put(client, "/v1/tables/users/rows/c", #"{"n":4}"#, [.ifMatch: "*"]).status == .ok)
            // A weak tag never matches If-Match (strong comparison).
            let v4 = try #require(try await client.execute(uri: "/v1/tables/users/rows/c", method: .get).headers[.eTag])
            try api.expectError(
                try await put(client, "/v1/tables/users/rows/c", "{}", [.ifMatch: "W/\(v4)"]), .preconditionFailed, "precondition_failed")
            // If-Match on an absent row: 412, and the row is not created.
            try api.expectError(
                try await put(client, "/v1/tables/users/rows/none", "{}", [.ifMatch: "*"]), .preconditionFailed, "precondition_failed")
            try api.expectError(try await client.execute(uri: "/v1/tables/users/rows/none", method: .get), .notFound, "not_found")
            // Delete: a stale tag is refused before anything; the right one deletes.
            try api.expectError(
                try await client.execute(uri: "/v1/tables/users/rows/c", method: .delete, headers: [.ifMatch: "\"\(v1)\""]),
                .preconditionFailed, "precondition_failed")
            #expect(try await client.execute(uri: "/v1/tables/users/rows/c", method: .delete, headers: [.ifMatch: v4]).status == .ok)
        }
    }

    @Test func ifNoneMatchStarCreatesOnce() async throws {
        try await api.withAPI { client in
            #expect(try await put(client, "/v1/tables/users/rows/once", #"{"who":"first"}"#, [.ifNoneMatch: "*"]).status == .created)
            try api.expectError(
                try await put(client, "/v1/tables/users/rows/once", #"{"who":"second"}"#, [.ifNoneMatch: "*"]), .preconditionFailed,
                "precondition_failed")
            let read = try await client.execute(uri: "/v1/tables/users/rows/once", method: .get)
            #expect(try api.json(read)["row"] as? [String: String] == ["who": "first"])
            // Eight concurrent creators: exactly one wins.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for i in 0..<8 {
                    group.addTask { try await put(client, "/v1/tables/users/rows/race", #"{"i":\#(i)}"#, [.ifNoneMatch: "*"]).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 1)
            #expect(statuses.filter { $0 == .preconditionFailed }.count == 7)
        }
    }

    @Test func readsAnswer304Or412() async throws {
        try await api.withAPI { client in
            let v = try version(try await put(client, "/v1/tables/users/rows/r", "{}"))
            let notModified = try await client.execute(uri: "/v1/tables/users/rows/r", method: .get, headers: [.ifNoneMatch: "W/\"\(v)\""])
            #expect(notModified.status == .notModified && notModified.headers[.eTag] == "\"\(v)\"" && notModified.body.readableBytes == 0)
            #expect(try await client.execute(uri: "/v1/tables/users/rows/r", method: .get, headers: [.ifNoneMatch: "\"1\""]).status == .ok)
            try api.expectError(
                try await client.execute(uri: "/v1/tables/users/rows/r", method: .get, headers: [.ifMatch: "\"1\""]), .preconditionFailed,
                "precondition_failed")
            #expect(
                try await client.execute(uri: "/v1/tables/users/rows/r", method: .head, headers: [.ifNoneMatch: "*"]).status == .notModified
            )
        }
    }

    @Test func malformedPreconditionsAre400AndWriteNothing() async throws {
        try await api.withAPI { client in
            let hostile = [
                "", " ", "17", "\"17", "17\"", "\"1\"\"2\"", "\"1\",", ",\"1\"", "*, \"1\"", "W/17", "w/\"1\"", "\"a b\"", "\"\u{7F}\"",
                "**", String(repeating: "\"1\",", count: 64) + "\"2\"",
            ]
            for value in hostile {
                for method in [HTTPRequest.Method.put, .delete, .get] {
                    let response = try await client.execute(
                        uri: "/v1/tables/users/rows/bad", method: method, headers: [.ifMatch: value],
                        body: method == .put ? ByteBuffer(string: "{}") : nil)
                    try api.expectError(response, .badRequest, "invalid_precondition")
                }
                try api.expectError(
                    try await put(client, "/v1/tables/users/rows/bad", "{}", [.ifNoneMatch: value]), .badRequest, "invalid_precondition")
            }
            try api.expectError(try await client.execute(uri: "/v1/tables/users/rows/bad", method: .get), .notFound, "not_found")
            // Valid but naming no version of ours: a tag past 2^64-1, a leading zero, a negative.
            for value in ["\"18446744073709551616\"", "\"018\"", "\"-1\"", "\"\u{00E9}\""] {
                try api.expectError(
                    try await put(client, "/v1/tables/users/rows/bad", "{}", [.ifMatch: value]), .preconditionFailed, "precondition_failed")
            }
            // 64 tags are allowed, and the largest version is a version like any other.
            let many = (0..<63).map { "\"\($0)\"" }.joined(separator: ",") + ",\"18446744073709551615\""
            try api.expectError(
                try await put(client, "/v1/tables/users/rows/bad", "{}", [.ifMatch: many]), .preconditionFailed, "precondition_failed")
            try api.expectError(try await client.execute(uri: "/v1/tables/users/rows/bad", method: .get), .notFound, "not_found")
        }
    }
}

/// Cursor pagination of a shard-key listing over HTTP.
@Suite(.timeLimit(.minutes(2))) struct ListingPaginationTests {
    let api = HTTPAPITests()

    struct Page: Decodable {
        let rows: [API.RowMetadata]
        let next_cursor: String?
    }

    @Test func pagesListEveryRowOnceWhileRowsAreWrittenAndDeleted() async throws {
        try await api.withAPI { client in
            for i in 0..<25 {
                let body = ByteBuffer(string: #"{"customer_id":"c7","i":\#(i)}"#)
                #expect(try await client.execute(uri: "/v1/tables/orders/rows/o\(i)", method: .put, body: body).status == .created)
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            while pages < 20 {
                pages += 1
                let query = cursor.map { "&cursor=\($0)" } ?? ""
                let response = try await client.execute(uri: "/v1/tables/orders/rows?shard_key=c7&limit=4\(query)", method: .get)
                #expect(response.status == .ok)
                let page = try JSONDecoder().decode(Page.self, from: Data(buffer: response.body))
                seen += page.rows.map(\.pk)
                // Meanwhile: a row behind the cursor, one ahead of it, and a delete ahead of it.
                if pages == 2 {
                    let body = ByteBuffer(string: #"{"customer_id":"c7"}"#)
                    _ = try await client.execute(uri: "/v1/tables/orders/rows/o0a", method: .put, body: body)
                    _ = try await client.execute(uri: "/v1/tables/orders/rows/o9a", method: .put, body: body)
                    _ = try await client.execute(uri: "/v1/tables/orders/rows/o8?shard_key=c7", method: .delete)
                }
                guard let next = page.next_cursor else { break }
                #expect(page.rows.count == 4)
                cursor = next
            }
            let expected = ((0..<25).map { "o\($0)" } + ["o9a"]).filter { $0 != "o8" }.sorted()
            #expect(seen == expected)
            #expect(Set(seen).count == seen.count)
        }
    }

    @Test func aFullLastPageHasNoCursorAndBadCursorsAre400() async throws {
        try await api.withAPI { client in
            for i in 0..<4 {
                _ = try await client.execute(
                    uri: "/v1/tables/orders/rows/o\(i)", method: .put, body: ByteBuffer(string: #"{"customer_id":"c1"}"#))
            }
            let whole = try await client.execute(uri: "/v1/tables/orders/rows?shard_key=c1&limit=4", method: .get)
            #expect(try JSONDecoder().decode(Page.self, from: Data(buffer: whole.body)).next_cursor == nil)
            let first = try await client.execute(uri: "/v1/tables/orders/rows?shard_key=c1&limit=3", method: .get)
            let token = try #require(try JSONDecoder().decode(Page.self, from: Data(buffer: first.body)).next_cursor)
            let rest = try await client.execute(uri: "/v1/tables/orders/rows?shard_key=c1&limit=3&cursor=\(token)", method: .get)
            #expect(try JSONDecoder().decode(Page.self, from: Data(buffer: rest.body)).rows.map(\.pk) == ["o3"])
            let head = try await client.execute(uri: "/v1/tables/orders/rows?shard_key=c1&limit=3&cursor=\(token)", method: .head)
            #expect(head.status == .ok && head.body.readableBytes == 0)
            // Another key's cursor, a damaged one, an empty one, one given twice.
            for query in [
                "shard_key=c2&cursor=\(token)", "shard_key=c1&cursor=\(token)x", "shard_key=c1&cursor=", "shard_key=c1&cursor=%00",
            ] {
                try api.expectError(
                    try await client.execute(uri: "/v1/tables/orders/rows?\(query)", method: .get), .badRequest, "invalid_cursor")
            }
            try api.expectError(
                try await client.execute(uri: "/v1/tables/orders/rows?shard_key=c1&cursor=\(token)&cursor=\(token)", method: .get),
                .badRequest,
                "invalid_query")
        }
    }
}
