import Foundation
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import ReshardCore
import Testing

/// Each request type of ReshardAPI, malformed, is refused with a 400 whose message names the
/// member, and nothing is created.
extension HTTPAPITests {
    @Test func malformedRequestsAreRefusedNamingTheMember() async throws {
        let names = API.MigrationOptions.names.joined(separator: ", ")
        let cases: [(uri: String, body: String, code: String, message: String)] = [
            ("/v1/tables", #"{"name":5,"primary_key":"id"}"#, "invalid_body", "name has the wrong type or is out of range"),
            ("/v1/tables", #"{"name":"t"}"#, "invalid_body", "primary_key is missing"),
            (
                "/v1/tables", #"{"name":"t","primary_key":"id","shard_key":["c"]}"#, "invalid_body",
                "shard_key has the wrong type or is out of range"
            ),
            ("/v1/shards", #"{"url":"postgres://u@127.0.0.1/d"}"#, "invalid_body", "id is missing"),
            ("/v1/shards", #"{"id":"s9","url":5}"#, "invalid_body", "url has the wrong type or is out of range"),
            ("/v1/migrations", #"{"shard":"s1"}"#, "invalid_body", "kind is missing"),
            ("/v1/migrations", #"{"kind":"rebalance","dry_run":"yes"}"#, "invalid_body", "dry_run has the wrong type or is out of range"),
            (
                "/v1/migrations", #"{"kind":"move_range","start":0,"end":"0x10"}"#, "invalid_body",
                "start has the wrong type or is out of range"
            ),
            ("/v1/migrations", #"{"kind":"rebalance","options":[1]}"#, "invalid_option", "options has the wrong type or is out of range"),
            (
                "/v1/migrations", #"{"kind":"rebalance","options":{"zz":1,"bake_msec":1}}"#, "invalid_option",
                "unknown option bake_msec; options are \(names)"
            ),
            ("/v1/migrations/m1/approve", #"{"gate":5}"#, "invalid_body", "gate has the wrong type or is out of range"),
        ]
        try await withAPI { client in
            for (uri, body, code, message) in cases {
                let response = try await client.execute(uri: uri, method: .post, headers: auth, body: ByteBuffer(string: body))
                let error = try Self.read(API.ErrorBody.self, response, .badRequest).error
                #expect(error.code == code && error.message == message, "\(uri) \(body): \(error)")
            }
            let tables = try Self.read(API.TableList.self, try await client.execute(uri: "/v1/tables", method: .get, headers: auth))
            #expect(tables.tables.map(\.name) == ["orders", "users"])
            #expect(
                try Self.read(API.ShardList.self, try await client.execute(uri: "/v1/shards", method: .get, headers: auth)).shards.count
                    == 4)
            #expect(
                try Self.read(API.MigrationList.self, try await client.execute(uri: "/v1/migrations", method: .get, headers: auth))
                    .migrations.isEmpty)
        }
    }

    /// Every option, given a value of the wrong type, is answered with its rule from the core
    /// (the same words as a value out of its bounds).
    @Test func everyMalformedOptionIsAnsweredWithItsRule() async throws {
        try await withAPI { client in
            for option in API.MigrationOptions.names {
                let body = #"{"kind":"rebalance","options":{"\#(option)":{"x":1}}}"#
                let response = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth, body: ByteBuffer(string: body))
                let error = try Self.read(API.ErrorBody.self, response, .badRequest).error
                let rule = MigrationSettings.rules[option] ?? "a list of strings"
                #expect(error.code == "invalid_option" && error.message == "\(option) must be \(rule)", "\(option): \(error)")
            }
        }
    }
}

/// The strict decoder of migration options on its own, as a client linking ReshardAPI meets it.
@Suite struct MigrationOptionsDecodingTests {
    func decode(_ json: String) throws -> API.MigrationOptions {
        try API.decode(API.MigrationOptions.self, from: Data(json.utf8))
    }

    @Test func aMemberThatIsNotAnOptionIsNamedFirstInNameOrder() {
        #expect(throws: API.OptionError.unknown("bake_msec")) { try decode(#"{"zz":1,"bake_msec":1,"chunk_rows":"x"}"#) }
    }

    @Test func aValueOfTheWrongTypeOrSizeNamesItsOption() {
        let malformed: [(String, String)] = [
            ("chunk_rows", "-1.5"), ("chunk_rows", "18446744073709551616"), ("bake_ms", "-1"), ("bake_ms", "1e999"),
            ("latency_factor", "\"2\""), ("checks", "\"users.amount\""), ("checks", "[1]"), ("canary_steps", "[\"x\"]"),
            ("gates", "{}"), ("cutover_budget_ms", "true"), ("max_rows_per_second", "9223372036854775808"),
            ("router_follow_ms", "-1"), ("router_follow_ms", "18446744073709551616"),
        ]
        for (option, value) in malformed {
            #expect(throws: API.OptionError.malformed(option), "\(option)=\(value)") { try decode(#"{"\#(option)":\#(value)}"#) }
        }
    }

    @Test func nullIsTheSameAsAbsentAndAWellTypedOptionIsKept() throws {
        #expect(try decode(#"{"bake_ms":null}"#) == API.MigrationOptions())
        var expected = API.MigrationOptions()
        expected.bakeMs = 18_446_744_073_709_551_615
        expected.canarySteps = []
        // Bounds are the server's to judge: the decoder only checks types and sizes.
        #expect(try decode(#"{"bake_ms":18446744073709551615,"canary_steps":[]}"#) == expected)
        #expect(try API.decode(API.MigrationOptions.self, from: try API.encode(WireSamples.options)) == WireSamples.options)
    }
}
