import Foundation
import ReshardAPI
import Testing

/// Every ReshardAPI type writes the members its schema in openapi.yaml defines: all those the
/// schema requires (as `null` when the value has none) even when every optional member is
/// absent, every member the schema defines when none is, and nothing the schema does not define.
@Suite struct WireSchemaTests {
    struct Sample: Sendable, CustomTestStringConvertible {
        let schema: String
        /// Every optional member absent.
        let minimal: any Encodable & Sendable
        /// Every optional member present.
        let full: any Encodable & Sendable
        /// Members of the schema the type does not carry (a row's verbatim body).
        var leftToTheServer: Set<String> = []

        var testDescription: String { schema }
    }

    @Test(arguments: WireSamples.all)
    func aTypeWritesWhatItsSchemaDefines(_ sample: Sample) throws {
        let schema = try #require(try OpenAPISchemas().schema(sample.schema), "no object schema \(sample.schema) in openapi.yaml")
        let minimal = try Self.members(sample.minimal)
        let full = try Self.members(sample.full)
        let required = schema.required.subtracting(sample.leftToTheServer)
        #expect(required.isSubset(of: minimal), "missing: \(required.subtracting(minimal).sorted())")
        #expect(full == schema.properties.subtracting(sample.leftToTheServer), "\(full.symmetricDifference(schema.properties).sorted())")
        #expect(minimal.isSubset(of: full))
    }

    @Test func theSchemaReaderFindsRequiredMembersOverSeveralLines() throws {
        let detail = try #require(try OpenAPISchemas().schema("MigrationDetail"))
        #expect(detail.required.count == 41 && detail.required == detail.properties)
        #expect(try OpenAPISchemas().schema("NoSuchSchema") == nil)
    }

    /// An optional member is read back as nil whether it came as `null` or not at all, so a
    /// client built against these types also reads a server that leaves members out.
    @Test func absentAndNullMembersReadTheSame() throws {
        let written = try API.encode(WireSamples.migrationSummary(full: false))
        let text = String(decoding: written, as: UTF8.self)
        #expect(text.contains(#""error":null"#) && text.contains(#""rows_estimated":null"#), "\(text)")
        let leftOut = #"{"id":"m1","kind":"rebalance","phase":"copying","moves":2,"rows_copied":5}"#
        #expect(try API.decode(API.MigrationSummary.self, from: Data(leftOut.utf8)) == WireSamples.migrationSummary(full: false))
        #expect(try API.decode(API.MigrationSummary.self, from: written) == WireSamples.migrationSummary(full: false))
    }

    /// The status's inline objects (no schema of their own) write every member too.
    @Test func inlineObjectsOfTheStatusWriteEveryMember() throws {
        #expect(
            try Self.members(API.AwaitingApproval(gate: "before_cutover", sinceMs: nil, waitingMs: nil)) == [
                "gate", "since_ms", "waiting_ms",
            ])
        #expect(try Self.members(API.Throttle(chunkRows: nil, reason: nil)) == ["chunk_rows", "reason", "max_rows_per_second"])
        #expect(try Self.members(API.PhaseMark(phase: "planned", atMs: 1)) == ["phase", "at_ms"])
        #expect(try Self.members(API.CutoverStepTiming(step: "hold", ms: 1)) == ["step", "ms"])
        #expect(
            try Self.members(API.WritePause(writesHeld: 1, p50Ms: 1, p99Ms: 1, maxMs: 1)) == ["writes_held", "p50_ms", "p99_ms", "max_ms"])
        #expect(
            try Self.members(API.VerificationReport.notVerifiedYet(id: "m1", phase: "copying")) == [
                "id", "phase", "verifications", "moves",
            ])
    }

    static func members(_ value: any Encodable) throws -> Set<String> {
        let object = try JSONSerialization.jsonObject(with: try API.encode(value)) as? [String: Any]
        return Set(try #require(object, "not a JSON object").keys)
    }
}
