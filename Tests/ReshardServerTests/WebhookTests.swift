import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ReshardAPI
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

/// Webhooks: each event posted in order, retried until a 2xx answers, given up after the
/// retries (the next one still goes), only while this process leads, and resumed by a new
/// dispatcher from the saved position without sending an acknowledged event again.
@Suite struct WebhookTests {
    /// What the receiver got, and which positions it refuses (each refusal counted).
    final class Receiver: Sendable {
        let received = Mutex<[(position: UInt64, kind: String, status: Int)]>([])
        /// Positions answered 503 this many more times, and positions always answered 500.
        let failuresLeft = Mutex<[UInt64: Int]>([:])
        let alwaysFail = Mutex<Set<UInt64>>([])

        func answer(_ request: Request) async throws -> HTTPResponse.Status {
            let body = try await request.body.collect(upTo: 1 << 20)
            let event = try API.decode(API.ClusterEvent.self, from: Data(buffer: body))
            let header = request.headers[HTTPField.Name("Reshard-Event-Id")!]
            #expect(header == String(event.position))
            let status: HTTPResponse.Status =
                if alwaysFail.withLock({ $0.contains(event.position) }) {
                    .internalServerError
                } else if failuresLeft.withLock({ left in
                    guard let count = left[event.position], count > 0 else { return false }
                    left[event.position] = count - 1
                    return true
                }) {
                    .serviceUnavailable
                } else {
                    .ok
                }
            received.withLock { $0.append((event.position, event.kind, Int(status.code))) }
            return status
        }

        var delivered: [UInt64] { received.withLock { $0.filter { $0.status == 200 }.map(\.position) } }
        func attempts(_ position: UInt64) -> Int { received.withLock { $0.filter { $0.position == position }.count } }
    }

    @Test func targetsAreParsedStrictly() throws {
        let target = try #require(WebhookTarget("http://127.0.0.1:8080/hooks/reshard?x=1"))
        #expect(target.host == "127.0.0.1" && target.port == 8080 && target.path == "/hooks/reshard?x=1")
        #expect(WebhookTarget("http://cache.local")?.port == 80 && WebhookTarget("http://cache.local")?.path == "/")
        for bad in [
            "https://h/", "http://", "ftp://h/", "http://u:p@h/", "http://h/#f", "http://h:0/", "http://h:65536/", "http://h/\u{0}",
            "http://h/\n", "h:80", "", "http://" + String(repeating: "a", count: 2_100),
        ] {
            #expect(WebhookTarget(bad) == nil, "\(bad.prefix(40))")
        }
    }

    @Test func eventsArePostedInOrderRetriedGivenUpAndResumed() async throws {
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-webhook", shards: 2, metricsFactory: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()),
            logger: Logger(label: "test"))
        defer { cluster.remove() }
        let metadata = cluster.metadata
        let receiver = Receiver()
        let router = Router()
        router.post("hook") { request, _ -> Response in Response(status: try await receiver.answer(request)) }
        let app = Application(router: router)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let target = try #require(WebhookTarget("http://127.0.0.1:\(port)/hook"))
            let leading = Atomic(true)
            func dispatcher() -> WebhookDispatcher {
                WebhookDispatcher(
                    targets: [target], router: cluster.router, metadata: metadata, isLeader: { leading.load(ordering: .relaxed) },
                    logger: Logger(label: "test"), retryDelays: [.milliseconds(10), .milliseconds(20), .milliseconds(40)],
                    requestTimeout: .seconds(5), pollEvery: .milliseconds(20))
            }
            func record() async throws -> UInt64 {
                try await metadata.recordEvent(MetadataEvent(kind: .cleanup, generation: 1, migration: "m-test"))
            }
            var running = Task { [dispatcher = dispatcher()] in await dispatcher.run() }
            // A new webhook starts at the log's end: it saves that position first.
            let cursor = WebhookDispatcher.cursorName(target)
            for _ in 0..<500 where try await metadata.reports().first(where: { $0.router == cursor }) == nil {
                try await Task.sleep(for: .milliseconds(10))
            }
            let first = try await record()
            receiver.failuresLeft.withLock { $0[first] = 2 }
            let second = try await record()
            receiver.alwaysFail.withLock { _ = $0.insert(second) }
            let third = try await record()
            for _ in 0..<500 where !receiver.delivered.contains(third) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(receiver.delivered == [first, third], "in order; the refused one given up")
            #expect(receiver.attempts(first) == 3 && receiver.attempts(second) == 4, "two retries, then every retry")

            // Not leading: nothing is sent. A new dispatcher (a new leader) resumes after `third`.
            leading.store(false, ordering: .relaxed)
            let quiet = try await record()
            try await Task.sleep(for: .milliseconds(200))
            #expect(!receiver.delivered.contains(quiet))
            running.cancel()
            await running.value
            running = Task { [dispatcher = dispatcher()] in await dispatcher.run() }
            leading.store(true, ordering: .relaxed)
            for _ in 0..<500 where !receiver.delivered.contains(quiet) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(receiver.delivered == [first, third, quiet], "resumed from the saved position, nothing sent twice")
            running.cancel()
            await running.value
        }
    }
}
