import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ReshardClient
import ReshardCore
import ReshardEngine
import ReshardServer
import ReshardStore
import Testing

/// The server on a real loopback socket, driven by Reshard's own keep-alive client: the path
/// the CLI and the benchmarks take.
@Suite struct LiveServerTests {
    @Test func keepAliveClientDrivesTheRealServer() async throws {
        let registry = PrometheusCollectorRegistry()
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-live", shards: 2, metricsFactory: PrometheusMetricsFactory(registry: registry), logger: Logger(label: "test"))
        defer { cluster.remove() }
        let router = cluster.router
        let configuration = ServerConfiguration(adminToken: "t0ken", newShardLocation: cluster.newShardLocation)
        let app = Application(router: ReshardApplication.makeRouter(shardRouter: router, configuration: configuration, registry: registry))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
            let create = try await connection.request(
                "POST", "/v1/tables", headers: [("Authorization", "Bearer t0ken")], body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
            #expect(create.status == 201)
            // Many requests on one keep-alive connection, each answered in order.
            for i in 0..<200 {
                let put = try await connection.request("PUT", "/v1/tables/kv/rows/key\(i)", body: Array("{\"i\":\(i)}".utf8))
                #expect(put.status == 201)
            }
            let get = try await connection.request("GET", "/v1/tables/kv/rows/key7")
            #expect(get.status == 200)
            #expect(get.text.contains(#""row":{"i":7}"#))
            #expect(get.header("content-type")?.hasPrefix("application/json") == true)
            let missing = try await connection.request("GET", "/v1/tables/kv/rows/nope")
            #expect(missing.status == 404)
            #expect(missing.text.contains("not_found"))
            await connection.close()
            await #expect(throws: HTTPClientError.connectionClosed) { try await connection.request("GET", "/healthz") }
        }
    }

    @Test func connectingToAClosedPortFailsClearly() async throws {
        // Port 9 (discard) is not served on loopback here; the error must name host and port.
        do {
            _ = try await HTTPConnection.connect(host: "127.0.0.1", port: 9, timeout: .seconds(2))
            Issue.record("expected a connection failure")
        } catch let error as HTTPClientError {
            #expect(error.description.contains("127.0.0.1:9"))
        }
    }
}
