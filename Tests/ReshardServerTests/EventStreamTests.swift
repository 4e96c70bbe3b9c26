import Foundation
import ReshardAPI
import ReshardClient
import Testing

/// `GET /v1/events` followed through migrations by a live `reshard serve`: each published map
/// arrives once, in order, with the ranges that moved, also across a reconnect with
/// `Last-Event-ID`; data responses carry the generation they were routed by.
@Suite(.serialized, .timeLimit(.minutes(3))) struct EventStreamTests {
    static let token = "event-stream-token-0123456789"
    static let auth = [("Authorization", "Bearer \(token)")]
    static let fast = #"{"chunk_rows":50,"bake_ms":0,"canary_steps":[],"tombstone_grace_ms":0}"#

    static func request(_ port: Int, _ method: String, _ path: String, _ body: String? = nil, headers: [(String, String)] = auth)
        async throws -> HTTPClientResponse
    {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await connection.close() } }
        return try await connection.request(
            method, path, headers: headers + (body == nil ? [] : [("Content-Type", "application/json")]), body: body.map { Array($0.utf8) })
    }

    /// Starts `body` as a migration and waits until it is done.
    static func migrate(_ port: Int, _ body: String) async throws {
        let created = try await request(port, "POST", "/v1/migrations", body)
        try #require(created.status == 202, "\(created.status) \(created.text)")
        let id = try #require(try API.decode(API.MigrationCreated.self, from: Data(created.body)).id)
        var phase = ""
        for _ in 0..<3_000 where !["done", "rolled_back", "failed"].contains(phase) {
            try await Task.sleep(for: .milliseconds(20))
            let status = try await request(port, "GET", "/v1/migrations/\(id)")
            phase = (try? API.decode(API.MigrationSummary.self, from: Data(status.body)).phase) ?? phase
        }
        try #require(phase == "done", "migration \(id) ended \(phase)")
    }

    static func events(_ messages: [EventStreamClient.Message]) throws -> [API.ClusterEvent] {
        try messages.filter { !["hello", "reset"].contains($0.event) }.map {
            try API.decode(API.ClusterEvent.self, from: Data($0.data.utf8))
        }
    }

    @Test func eachMapChangeArrivesOnceInOrderAcrossAReconnect() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-events")
        defer { scratch.close() }
        let (_, port) = try await scratch.startServing()
        _ = try await Self.request(port, "POST", "/v1/tables", #"{"name":"kv","primary_key":"k"}"#)
        for n in 0..<60 { _ = try await Self.request(port, "PUT", "/v1/tables/kv/rows/k\(n)", #"{"v":\#(n)}"#, headers: []) }
        let before = try await Self.request(port, "GET", "/v1/tables/kv/rows/k1", headers: [])
        #expect(before.headers.first { $0.0.lowercased() == "reshard-generation" }?.1 == "1")
        #expect(before.headers.first { $0.0.lowercased() == "reshard-layout-generation" }?.1 == "1")

        // A first connection starts now: `hello` names the log's last position (the first map's).
        let first = try EventStreamClient(port: port)
        let hello = await first.wait { $0.contains { $0.event == "hello" } }
        #expect(first.status == 200)
        let start = try #require(hello.first { $0.event == "hello" })
        let helloBody = try API.decode(API.EventStreamStart.self, from: Data(start.data.utf8))
        #expect(helloBody.generation == 1 && start.id == String(helloBody.position) && helloBody.position >= 1)

        _ = try await Self.request(port, "POST", "/v1/shards", #"{"id":"s5"}"#)
        try await Self.migrate(port, #"{"kind":"add_shard","shard":"s5","options":\#(Self.fast)}"#)
        let seen = try Self.events(await first.wait { (try? Self.events($0).contains { $0.kind == "cleanup" }) ?? false })
        first.close()
        let maps = seen.filter { $0.kind == "shard_map" }
        #expect(maps.map(\.generation) == [2] && maps.first?.previousGeneration == 1)
        #expect(maps.first?.moves.allSatisfy { $0.to == "s5" } == true && maps.first?.moves.isEmpty == false)
        let cleanup = try #require(seen.first { $0.kind == "cleanup" })
        #expect(cleanup.migration != nil && cleanup.moves == maps.first?.moves)
        let after = try await Self.request(port, "GET", "/v1/tables/kv/rows/k1", headers: [])
        #expect(after.headers.first { $0.0.lowercased() == "reshard-generation" }?.1 == "2")

        // Gone while the next migration runs; back with Last-Event-ID, it gets exactly what it missed.
        let last = try #require(seen.last?.position)
        try await Self.migrate(port, #"{"kind":"remove_shard","shard":"s1","options":\#(Self.fast)}"#)
        let again = try EventStreamClient(port: port, lastEventID: String(last))
        let missed = try Self.events(await again.wait { (try? Self.events($0).contains { $0.kind == "cleanup" }) ?? false })
        again.close()
        #expect(missed.map(\.position) == Array((last + 1)...(last + UInt64(missed.count))), "gapless, in order, none twice")
        #expect(missed.filter { $0.kind == "shard_map" }.map(\.generation) == [3])
        #expect(missed.first { $0.kind == "shard_map" }?.moves.allSatisfy { $0.from == "s1" } == true)

        // A position ahead of the log starts over with `reset`; a bad one is refused.
        let ahead = try EventStreamClient(port: port, lastEventID: "999999")
        let reset = await ahead.wait { $0.contains { $0.event == "reset" } }
        ahead.close()
        #expect(reset.first?.event == "reset" && reset.first?.id == String(missed.last?.position ?? 0))
        let maxed = try EventStreamClient(port: port, lastEventID: "18446744073709551615")
        let maxReset = await maxed.wait { $0.contains { $0.event == "reset" } }
        maxed.close()
        #expect(maxReset.first?.event == "reset", "2^64-1 is ahead of every log: \(maxReset)")
        for bad in ["x", "-1", "+1", "18446744073709551616", "1 2", "", "٣"] {
            let refused = try await Self.request(port, "GET", "/v1/events", headers: [("Last-Event-ID", bad)])
            #expect(refused.status == 400 && refused.text.contains("invalid_last_event_id"), "\(bad): \(refused.status) \(refused.text)")
        }
        // A control character, which Reshard's own client refuses to send, sent raw.
        let control = try EventStreamClient(port: port, lastEventID: "1\u{7}")
        for _ in 0..<250 where control.status == nil { try await Task.sleep(for: .milliseconds(20)) }
        control.close()
        #expect(control.status == 400, "a control character in Last-Event-ID: \(String(describing: control.status))")
        let twice = try await Self.request(port, "GET", "/v1/events", headers: [("Last-Event-ID", "1"), ("Last-Event-ID", "2")])
        #expect(twice.status == 400 && twice.text.contains("invalid_last_event_id"), "\(twice.text)")
        for (query, code) in [
            ("after=%00", "invalid_last_event_id"), ("after=%FF", "invalid_query"), ("after=1&after=2", "invalid_query"),
            ("max_ms=86400001", "invalid_max_ms"), ("max_ms=18446744073709551615", "invalid_max_ms"),
        ] {
            let refused = try await Self.request(port, "GET", "/v1/events?\(query)", headers: [])
            #expect(refused.status == 400 && refused.text.contains(code), "\(query): \(refused.status) \(refused.text)")
        }
        let head = try await Self.request(port, "HEAD", "/v1/events", headers: [])
        #expect(head.status == 200 && head.body.isEmpty && head.headers.contains { $0.1.hasPrefix("text/event-stream") })
        let post = try await Self.request(port, "POST", "/v1/events", "{}", headers: [])
        #expect(post.status == 405)
        let bounded = try await Self.request(port, "GET", "/v1/events?max_ms=100&after=\(last)", headers: [])
        #expect(bounded.status == 200 && bounded.text.contains("event: shard_map"), "\(bounded.text.prefix(300))")
        let badMax = try await Self.request(port, "GET", "/v1/events?max_ms=-1", headers: [])
        #expect(badMax.status == 400 && badMax.text.contains("invalid_max_ms"))
    }
}
