import Foundation
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import Testing

/// What the server sends, a client reads: every JSON answer of a migration's life decodes into
/// its ReshardAPI type, and that value encodes back to the very bytes the server sent, so the
/// type carries every member the server wrote and no other.
extension HTTPAPITests {
    @Test func everyAnswerDecodesIntoItsReshardAPITypeAndBackToTheSameBytes() async throws {
        try await withAPI { client in
            #expect(try Self.read(API.Health.self, try await client.execute(uri: "/healthz", method: .get)).generation == 1)
            for i in 0..<200 {
                let body = ByteBuffer(string: #"{"id":"u\#(i)","amount":\#(i).5}"#)
                let put = try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: body)
                #expect(try Self.read(API.WriteReceipt.self, put, .created).pk == "u\(i)")
            }
            let row = try await client.execute(uri: "/v1/tables/users/rows/u1", method: .get)
            #expect(try API.decode(API.RowMetadata.self, from: Data(buffer: row.body)).pk == "u1")
            let deleted = try Self.read(API.DeleteReceipt.self, try await client.execute(uri: "/v1/tables/users/rows/u0", method: .delete))
            #expect(deleted.deleted && deleted.pk == "u0")

            let table = try await client.execute(
                uri: "/v1/tables", method: .post, headers: auth,
                body: ByteBuffer(bytes: try API.encode(API.CreateTable(name: "t", primaryKey: "id"))))
            #expect(try Self.read(API.Table.self, table, .created) == API.Table(name: "t", primaryKey: "id", shardKey: "id"))
            #expect(
                try Self.read(API.TableList.self, try await client.execute(uri: "/v1/tables", method: .get, headers: auth)).tables.count
                    == 3)
            let shard = try await client.execute(
                uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(bytes: try API.encode(API.CreateShard(id: "s5"))))
            #expect(try Self.read(API.ShardCreated.self, shard, .created).id == "s5")
            #expect(
                try Self.read(API.ShardList.self, try await client.execute(uri: "/v1/shards", method: .get, headers: auth)).shards.count
                    == 5)
            let cluster = try Self.read(API.Cluster.self, try await client.execute(uri: "/v1/cluster", method: .get, headers: auth))
            #expect(cluster.ranges.first?.start == "0x0000000000000000" && cluster.ranges.last?.end == "0x10000000000000000")

            var request = API.CreateMigration(kind: "add_shard", shard: "s5", dryRun: true)
            let dry = try Self.read(API.MigrationCreated.self, try await Self.post(client, "/v1/migrations", request))
            #expect(dry.id == nil && dry.dryRun && dry.plan.toGeneration == 2)
            var options = API.MigrationOptions()
            options.bakeMs = 100
            options.canaryStepMs = 20
            options.gates = ["before_cutover"]
            options.checks = ["users.amount"]
            request.dryRun = false
            request.options = options
            let started = try Self.read(API.MigrationCreated.self, try await Self.post(client, "/v1/migrations", request), .accepted)
            let id = try #require(started.id)

            let waiting = try await waitForGate("before_cutover", of: id, client)
            #expect(waiting["phase"] as? String == "canary")
            let status = try Self.read(
                API.MigrationStatus.self, try await client.execute(uri: "/v1/migrations/\(id)", method: .get, headers: auth))
            guard case .detail(let detail) = status else {
                Issue.record("a readable migration answered in brief: \(status)")
                return
            }
            #expect(detail.awaitingApproval?.gate == "before_cutover" && detail.gates == ["before_cutover"])
            #expect(detail.verification?.passed == true && detail.canary.steps == [1, 10, 50, 100])
            let report = try Self.read(
                API.VerificationReport.self, try await client.execute(uri: "/v1/migrations/\(id)/verification", method: .get, headers: auth)
            )
            #expect(report.summary?.aggregates.first?.matches == true && report.moves.count == detail.moves)

            let approved = try await Self.post(client, "/v1/migrations/\(id)/approve", API.Approve(gate: "before_cutover"))
            #expect(try Self.read(API.CommandResult.self, approved).id == id)
            #expect(try await waitForPhase("done", of: id, client) == "done")
            let done = try Self.read(
                API.MigrationStatus.self, try await client.execute(uri: "/v1/migrations/\(id)", method: .get, headers: auth))
            guard case .detail(let finished) = done else {
                Issue.record("a readable migration answered in brief: \(done)")
                return
            }
            #expect(!finished.writePauses.isEmpty && !finished.cutoverSteps.isEmpty && finished.phases.last?.phase == "done")
            let list = try Self.read(API.MigrationList.self, try await client.execute(uri: "/v1/migrations", method: .get, headers: auth))
            #expect(list.migrations == [finished.summary])

            let refused = try await client.execute(uri: "/v1/migrations/\(id)/rollback", method: .post, headers: auth)
            #expect(try Self.read(API.ErrorBody.self, refused, .conflict).error.code == "command_rejected")
        }
    }

    /// `response` as `T`, having checked its status and that `T` re-encodes it byte for byte.
    static func read<T: Codable>(
        _ type: T.Type, _ response: TestResponse, _ status: HTTPResponse.Status = .ok, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> T {
        let bytes = Data(buffer: response.body)
        #expect(response.status == status, "\(String(decoding: bytes, as: UTF8.self))", sourceLocation: sourceLocation)
        let value = try API.decode(T.self, from: bytes)
        #expect(
            try API.encode(value) + Data("\n".utf8) == bytes,
            "\(T.self) lost or changed a member: \(String(decoding: bytes, as: UTF8.self))",
            sourceLocation: sourceLocation)
        return value
    }

    static func post(_ client: any TestClientProtocol, _ uri: String, _ body: some Encodable) async throws -> TestResponse {
        try await client.execute(
            uri: uri, method: .post, headers: [.authorization: "Bearer \(HTTPAPITests.token)"],
            body: ByteBuffer(bytes: try API.encode(body)))
    }
}
