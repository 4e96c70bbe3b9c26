import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import Prometheus
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore
import ReshardTestKit
import Testing

/// Keys and bodies an attacker would send, on every backend: each is refused with a 4xx JSON
/// error and nothing written, or stored and returned byte for byte.
@Suite(.timeLimit(.minutes(3))) struct HostileInputTests {
    static let token = "hostile-input-token-0123456789"

    struct API: Sendable {
        let client: any TestClientProtocol
        let cluster: ScratchCluster

        func send(
            _ method: HTTPRequest.Method, _ uri: String, _ body: [UInt8]? = nil, headers: HTTPFields = [:]
        ) async throws -> TestResponse {
            try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        }

        func send(_ method: HTTPRequest.Method, _ uri: String, json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
            try await send(method, uri, Array(json.utf8), headers: headers)
        }

        /// Every row of `table` on every shard, tombstones included, as (shard, pk, body).
        func everyRow(_ table: String) async throws -> [String] {
            var rows: [String] = []
            for shard in try await cluster.metadata.shards() {
                guard let store = cluster.router.store(shard.id), let name = TableName(table) else { continue }
                for row in try await store.scan(table: name, range: .full, after: nil, limit: 10_000) {
                    rows.append("\(row.pk)=\(row.body ?? "<tombstone>")")
                }
            }
            return rows.sorted()
        }
    }

    func withAPI(_ backend: ShardBackend, _ body: @Sendable (API) async throws -> Void) async throws {
        let registry = PrometheusCollectorRegistry()
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let cluster = try await ScratchCluster.make(
            prefix: "reshard-hostile", backend: backend, shards: 4, metricsFactory: PrometheusMetricsFactory(registry: registry),
            logger: logger)
        do {
            _ = try await cluster.router.createTable(name: "users", primaryKey: "id", shardKey: "id")
            _ = try await cluster.router.createTable(name: "orders", primaryKey: "id", shardKey: "customer_id")
            let configuration = ServerConfiguration(adminToken: Self.token, newShardLocation: { .sqlite(path: "\($0).sqlite") })
            let migrations = MigrationManager(router: cluster.router, metadata: cluster.metadata, logger: logger)
            let app = Application(
                router: ReshardApplication.makeRouter(
                    shardRouter: cluster.router, configuration: configuration, registry: registry, migrations: migrations))
            try await app.test(.router) { client in try await body(API(client: client, cluster: cluster)) }
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }

    func expectError(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
        let text = String(buffer: response.body)
        #expect(text.contains("\"code\":\"\(code)\""), "\(text)", sourceLocation: sourceLocation)
    }

    /// `text` with every byte percent-encoded, so the request line carries exactly these bytes.
    func escaped(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%%%02X", $0) }.joined()
    }

    @Test(arguments: ShardBackend.clusterCases)
    func keysWithControlCharactersAreRefusedAndNothingIsWritten(backend: ShardBackend) async throws {
        try await withAPI(backend) { api in
            #expect(try await api.send(.put, "/v1/tables/users/rows/victim", json: #"{"v":"original"}"#).status == .created)
            #expect(try await api.send(.put, "/v1/tables/orders/rows/o1", json: #"{"customer_id":"c7","v":1}"#).status == .created)
            let before = try await api.everyRow("users") + (try await api.everyRow("orders"))

            for pk in ["victim%00x", "%00", "victim%01", "victim%09", "victim%0A", "victim%0D", "victim%1B", "victim%7F", "victim%C2%85"] {
                expectError(try await api.send(.put, "/v1/tables/users/rows/\(pk)", json: #"{"v":"evil"}"#), .badRequest, "invalid_pk")
                expectError(try await api.send(.delete, "/v1/tables/users/rows/\(pk)"), .badRequest, "invalid_pk")
                expectError(try await api.send(.get, "/v1/tables/users/rows/\(pk)"), .badRequest, "invalid_pk")
            }
            // Not UTF-8, or a malformed escape: the path itself is refused.
            for pk in ["victim%FF", "victim%C3%28", "victim%ED%A0%80", "victim%F4%90%80%80", "victim%zz", "victim%4", "%"] {
                expectError(try await api.send(.put, "/v1/tables/users/rows/\(pk)", json: "{}"), .badRequest, "invalid_path")
                expectError(try await api.send(.get, "/v1/tables/users/rows/\(pk)"), .badRequest, "invalid_path")
            }
            for key in [#""c7\u0000x""#, #""c7\u0001""#, #""\u007f""#, #""""#] {
                expectError(
                    try await api.send(.put, "/v1/tables/orders/rows/o1", json: #"{"customer_id":\#(key),"v":2}"#), .badRequest,
                    "invalid_shard_key")
            }
            for query in ["shard_key=c7%00x", "shard_key=c7%0A", "shard_key="] {
                expectError(try await api.send(.get, "/v1/tables/orders/rows/o1?\(query)"), .badRequest, "invalid_shard_key")
                expectError(try await api.send(.delete, "/v1/tables/orders/rows/o1?\(query)"), .badRequest, "invalid_shard_key")
                expectError(try await api.send(.get, "/v1/tables/orders/rows?\(query)"), .badRequest, "invalid_shard_key")
            }
            for query in ["shard_key=c7%FF", "shard_key=%zz", "shard_key=c7&shard_key=c8", "limit=1&limit=2&shard_key=c7"] {
                expectError(try await api.send(.get, "/v1/tables/orders/rows/o1?\(query)"), .badRequest, "invalid_query")
                expectError(try await api.send(.get, "/v1/tables/orders/rows?\(query)"), .badRequest, "invalid_query")
            }
            for limit in ["0", "-1", "+5", "1001", "18446744073709551615", "99999999999999999999", "1e2", "%00", "5%0A", "", "%EF%BC%95"] {
                expectError(try await api.send(.get, "/v1/tables/orders/rows?shard_key=c7&limit=\(limit)"), .badRequest, "invalid_limit")
            }
            let after = try await api.everyRow("users") + (try await api.everyRow("orders"))
            #expect(after == before)
        }
    }

    @Test(arguments: ShardBackend.clusterCases)
    func keysRoundTripByteForByte(backend: ShardBackend) async throws {
        try await withAPI(backend) { api in
            let keys = [
                "é", "日本語", "😀", "🇫🇷+ %/?#", "\u{FEFF}", String(repeating: "k", count: RowKey.maxBytes),
                String(repeating: "😀", count: RowKey.maxBytes / 4),
            ]
            for key in keys {
                let uri = "/v1/tables/users/rows/" + escaped(Array(key.utf8))
                let put = try await api.send(.put, uri, json: #"{"v":1}"#)
                #expect(put.status == .created)
                let get = try await api.send(.get, uri)
                #expect(get.status == .ok)
                // Compared as bytes: JSONSerialization drops a U+FEFF that starts a string.
                let expected = Array(("{\"pk\":\"" + key + "\"").utf8)
                #expect(Array(String(buffer: get.body).utf8.prefix(expected.count)) == expected, "\(String(buffer: get.body))")
            }
            let overlong = "/v1/tables/users/rows/" + escaped(Array(String(repeating: "k", count: RowKey.maxBytes + 1).utf8))
            expectError(try await api.send(.put, overlong, json: "{}"), .badRequest, "invalid_pk")
            #expect(try await api.everyRow("users").count == keys.count)

            // A 4-byte shard key in the body and in the query.
            #expect(
                try await api.send(.put, "/v1/tables/orders/rows/o1", json: #"{"customer_id":"😀\ud83d\ude00","v":1}"#).status == .created)
            let listed = try await api.send(.get, "/v1/tables/orders/rows?shard_key=" + escaped(Array("😀😀".utf8)))
            #expect(listed.status == .ok)
            #expect(String(buffer: listed.body).contains(#""id":"o1""#) || String(buffer: listed.body).contains(#""pk":"o1""#))
        }
    }

    @Test(arguments: ShardBackend.clusterCases)
    func bodiesAreStrictUTF8JSONObjectsStoredExactly(backend: ShardBackend) async throws {
        try await withAPI(backend) { api in
            let json = #"{"name":"Ada"}"#
            let utf16LE = json.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            let utf16BE = json.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            let utf32LE = json.unicodeScalars.flatMap { [UInt8($0.value & 0xFF), 0, 0, 0] }
            let utf32BE = json.unicodeScalars.flatMap { [0, 0, 0, UInt8($0.value & 0xFF)] }
            let refused: [[UInt8]] = [
                utf16LE, utf16BE, utf32LE, utf32BE, [0xFF, 0xFE] + utf16LE, [0xEF, 0xBB, 0xBF] + Array(json.utf8),
                Array(#"{"name":"A","name":"B"}"#.utf8), Array(#"{"name":"\ud800"}"#.utf8), Array("{\"name\":\"a\u{0}b\"}".utf8),
                [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D], Array("[1]".utf8), Array("".utf8),
            ]
            for body in refused {
                expectError(try await api.send(.put, "/v1/tables/users/rows/u1", body), .badRequest, "invalid_body")
                expectError(
                    try await api.send(.put, "/v1/tables/orders/rows/o1", body), .badRequest,
                    body == Array(#"{"name":"A","name":"B"}"#.utf8) ? "invalid_body" : "invalid_body")
            }
            #expect(try await api.everyRow("users").isEmpty)
            #expect(try await api.everyRow("orders").isEmpty)

            // What is valid JSON is kept exactly as sent, numbers of any size included.
            let exact = #"{ "big": 1e999, "n": 123456789012345678901234567890, "esc": "\u0000\ud83d\ude00", "é": [ {} ] }"#
            #expect(try await api.send(.put, "/v1/tables/users/rows/u1", json: exact).status == .created)
            let read = try await api.send(.get, "/v1/tables/users/rows/u1")
            #expect(String(buffer: read.body).contains(#""row":\#(exact)"#))
            #expect(try await api.everyRow("users") == ["u1=\(exact)"])
        }
    }

    @Test func bodiesMustBeDeclaredJSONOrUndeclared() async throws {
        try await withAPI(.sqlite) { api in
            for type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "multipart/form-data; boundary=x"] {
                let headers: HTTPFields = [.contentType: type, .authorization: "Bearer \(Self.token)"]
                expectError(
                    try await api.send(.put, "/v1/tables/users/rows/u1", json: "{}", headers: headers), .unsupportedMediaType,
                    "unsupported_media_type")
                expectError(
                    try await api.send(.post, "/v1/tables", json: #"{"name":"t","primary_key":"id"}"#, headers: headers),
                    .unsupportedMediaType, "unsupported_media_type")
            }
            #expect(try await api.everyRow("users").isEmpty)
            for type in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
                #expect(
                    [.ok, .created].contains(
                        try await api.send(.put, "/v1/tables/users/rows/u1", json: "{}", headers: [.contentType: type]).status))
            }
            #expect(try await api.send(.put, "/v1/tables/users/rows/u2", json: "{}").status == .created)
        }
    }

    @Test func migrationOptionsOutsideTheirBoundsNameTheOptionAndStartNothing() async throws {
        try await withAPI(.sqlite) { api in
            let auth: HTTPFields = [.authorization: "Bearer \(Self.token)"]
            #expect(try await api.send(.post, "/v1/shards", json: #"{"id":"s5"}"#, headers: auth).status == .created)
            let cases: [(String, String)] = [
                ("bake_ms", "18446744073709551615"), ("max_lag_ms", "18446744073709551615"), ("bake_ms", "-1"),
                ("tombstone_grace_ms", "1e999"), ("canary_step_ms", "86400001"), ("failed_stream_retention_ms", "18446744073709551615"),
                ("chunk_rows", "18446744073709551615"), ("chunk_rows", "0"), ("chunk_rows", "-5"), ("chunk_rows", "1.5"),
                ("max_rows_per_second", "9223372036854775808"), ("verify_subranges", "0"), ("max_repair_passes", "11"),
                ("latency_factor", "1e999"), ("latency_factor", "-2"), ("canary_steps", "[50,10]"), ("canary_steps", "[\"x\"]"),
                ("bake_ms", "\"600000\""), ("bake_msx", "1"), ("checks", "[\"nodot\"]"),
                // Reads move step by step only in write_new_read_old; the default strategy refuses them.
                ("read_steps", "[10,100]"), ("read_step_ms", "86400001"), ("read_step_ms", "-1"),
                ("max_read_error_rate", "1.5"), ("max_read_error_rate", "-0.1"), ("max_read_error_rate", "1e999"),
                ("max_read_error_rate", "\"0.1\""), ("max_read_latency_factor", "1"), ("max_read_latency_factor", "1e999"),
            ]
            let readCases: [(String, String)] = [
                ("read_steps", "[50,10]"), ("read_steps", "[0,100]"), ("read_steps", "[10,10]"), ("read_steps", "[100.5]"),
                ("read_steps", "[\"x\"]"), ("read_steps", "[-1]"), ("read_steps", "50"),
            ]
            for (option, value, strategy) in cases.map({ ($0, $1, "cdc_backfill") }) + readCases.map({ ($0, $1, "write_new_read_old") }) {
                let body = #"{"kind":"add_shard","shard":"s5","strategy":"\#(strategy)","options":{"\#(option)":\#(value)}}"#
                let response = try await api.send(.post, "/v1/migrations", json: body, headers: auth)
                #expect(response.status == .badRequest, "\(option)=\(value)")
                let text = String(buffer: response.body)
                #expect(text.contains(#""code":"invalid_option""#), "\(option)=\(value): \(text)")
                #expect(text.contains(option), "\(option)=\(value): \(text)")
            }
            let list = try await api.send(.get, "/v1/migrations", headers: auth)
            #expect(String(buffer: list.body).contains(#""migrations":[]"#), "\(String(buffer: list.body))")

            // Removing a shard nobody registered names it unknown.
            let remove = try await api.send(.post, "/v1/migrations", json: #"{"kind":"remove_shard","shard":"s9"}"#, headers: auth)
            expectError(remove, .notFound, "unknown_shard")
            let empty = try await api.send(.post, "/v1/migrations", json: #"{"kind":"remove_shard","shard":"s5"}"#, headers: auth)
            expectError(empty, .badRequest, "shard_not_in_map")
        }
    }
}
