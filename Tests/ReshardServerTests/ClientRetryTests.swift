import Foundation
import Hummingbird
import HummingbirdTesting
import ReshardClient
import Synchronization
import Testing

/// ReshardClient's retries against a scripted server: a 503 that says nothing was written is
/// sent again no sooner than its Retry-After; one that may have been written is not, for a
/// write; the budget bounds the waiting.
@Suite(.timeLimit(.minutes(1))) struct ClientRetryTests {
    /// The statuses and codes the scripted route answers, in order (the last one from then on).
    final class Script: Sendable {
        let answers: [(Int, String?)]
        let calls = Atomic<Int>(0)
        init(_ answers: [(Int, String?)]) { self.answers = answers }

        func next() -> Response {
            let call = calls.add(1, ordering: .relaxed).newValue - 1
            let (status, code) = answers[min(call, answers.count - 1)]
            guard let code else {
                let receipt = #"{"pk":"a","version":7,"shard":"s1","generation":1,"row":{"n":1}}"#
                return Response(
                    status: .init(code: status), headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: receipt)))
            }
            let body = #"{"error":{"code":"\#(code)","message":"scripted"}}"#
            return Response(
                status: .init(code: status), headers: [.contentType: "application/json", .retryAfter: "1"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }

    func withScript(_ script: Script, budget: Duration = .seconds(20), _ body: @Sendable (ReshardClient) async throws -> Void) async throws
    {
        let router = Router()
        router.put("v1/tables/t/rows/a") { _, _ in script.next() }
        router.get("v1/tables/t/rows/a") { _, _ in script.next() }
        try await Application(router: router).test(.live) { client in
            let port = try #require(client.port)
            var configuration = ReshardClient.Configuration(url: "http://127.0.0.1:\(port)")
            configuration.retryBudget = budget
            let reshard = try ReshardClient(configuration)
            do {
                try await body(reshard)
            } catch {
                try? await reshard.shutdown()
                throw error
            }
            try await reshard.shutdown()
        }
    }

    struct Row: Codable, Sendable { let n: Int }

    @Test func aWriteRefusedAsRangeMovingIsSentAgainAfterRetryAfter() async throws {
        let script = Script([(503, "range_moving"), (503, "range_moving"), (200, nil)])
        try await withScript(script) { reshard in
            let started = ContinuousClock.now
            let result = try await reshard.put(Row(n: 1), table: "t", pk: "a", condition: .version(6))
            #expect(result.version == 7)
            // Two answers said "retry after 1 s": the client waited at least that each time.
            #expect(ContinuousClock.now - started >= .seconds(2))
        }
        #expect(script.calls.load(ordering: .relaxed) == 3)
    }

    @Test func aWriteThatMayHaveHappenedIsNotSentAgainButAReadIs() async throws {
        let write = Script([(503, "shard_unavailable"), (200, nil)])
        try await withScript(write) { reshard in
            await #expect(throws: ReshardClientError.self) { try await reshard.put(Row(n: 1), table: "t", pk: "a") }
        }
        #expect(write.calls.load(ordering: .relaxed) == 1)
        let read = Script([(503, "shard_unavailable"), (200, nil)])
        try await withScript(read) { reshard in
            let row = try await reshard.get(Row.self, table: "t", pk: "a")
            #expect(row?.value.n == 1)
        }
        #expect(read.calls.load(ordering: .relaxed) == 2)
    }

    @Test func theBudgetBoundsTheWaiting() async throws {
        let script = Script([(503, "range_moving")])
        try await withScript(script, budget: .milliseconds(300)) { reshard in
            do {
                _ = try await reshard.put(Row(n: 1), table: "t", pk: "a")
                Issue.record("a 503 past the budget was not thrown")
            } catch let error as ReshardClientError {
                #expect(error.status == 503 && error.code == "range_moving")
            }
        }
        // Retry-After (1 s) is longer than the budget: the first answer is the last.
        #expect(script.calls.load(ordering: .relaxed) == 1)
    }
}
