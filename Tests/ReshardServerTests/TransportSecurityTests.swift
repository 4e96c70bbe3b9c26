import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ReshardClient
import ReshardEngine
import ReshardServer
import Testing

/// The optional data-plane token, and a real `reshard serve` over TLS with a certificate made
/// for the test, driven by ReshardClient trusting only that certificate's CA.
@Suite(.timeLimit(.minutes(2))) struct TransportSecurityTests {
    static let adminToken = "admin-token-for-tls-1"
    static let dataToken = "data-token-0123456789"

    @Test func aDataTokenGuardsRowsAndEventsOnly() async throws {
        let registry = PrometheusCollectorRegistry()
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-datatoken", shards: 2, metricsFactory: PrometheusMetricsFactory(registry: registry),
            logger: Logger(label: "test"))
        defer { cluster.remove() }
        _ = try await cluster.router.createTable(name: "users", primaryKey: "id", shardKey: "id")
        let configuration = ServerConfiguration(
            adminToken: Self.adminToken, newShardLocation: cluster.newShardLocation, dataToken: Self.dataToken)
        let app = Application(
            router: ReshardApplication.makeRouter(shardRouter: cluster.router, configuration: configuration, registry: registry))
        try await app.test(.router) { client in
            let body = ByteBuffer(string: "{}")
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "Basic \(Self.dataToken)"]] {
                let refused = try await client.execute(uri: "/v1/tables/users/rows/a", method: .put, headers: headers, body: body)
                #expect(refused.status == .unauthorized && refused.headers[.wwwAuthenticate] == "Bearer")
                #expect(try await client.execute(uri: "/v1/events", method: .get, headers: headers).status == .unauthorized)
                let batch = try await client.execute(
                    uri: "/v1/tables/users/rows:batch_get", method: .post, headers: headers, body: ByteBuffer(string: #"{"items":[]}"#))
                #expect(batch.status == .unauthorized)
            }
            let data: HTTPFields = [.authorization: "Bearer \(Self.dataToken)"]
            #expect(try await client.execute(uri: "/v1/tables/users/rows/a", method: .put, headers: data, body: body).status == .created)
            let admin: HTTPFields = [.authorization: "Bearer \(Self.adminToken)"]
            #expect(try await client.execute(uri: "/v1/tables/users/rows/a", method: .get, headers: admin).status == .ok)
            // The data token opens no admin route; health and metrics stay open.
            #expect(try await client.execute(uri: "/v1/cluster", method: .get, headers: data).status == .unauthorized)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    /// A CA and a server certificate for 127.0.0.1, made with openssl in `folder`.
    static func certificates(in folder: String) throws -> (ca: String, certificate: String, key: String) {
        let script = """
            set -e
            cd '\(folder)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=reshard-test-ca -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.pem 2>/dev/null
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl failed")
        return (folder + "/ca.pem", folder + "/server.pem", folder + "/server.key")
    }

    @Test func theServerSpeaksHTTPSWithItsCertificateAndKey() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.adminToken, prefix: "reshard-tls")
        defer { scratch.close() }
        let files = try Self.certificates(in: scratch.root)
        let server = try scratch.start(
            ["--data", scratch.data, "--tls-cert-file", files.certificate, "--tls-key-file", files.key, "--data-token", Self.dataToken],
            port: 0)
        #expect(await server.waitForLog("reshard is serving"), "\(server.logTail)")
        let line = try #require(server.log.split(separator: "\n").first { $0.contains("reshard is serving") })
        let address = try #require(line.range(of: "address=https://127.0.0.1:"), "\(line)")
        let port = try #require(Int(line[address.upperBound...].prefix { $0.isNumber }))
        let url = "https://127.0.0.1:\(port)"

        let client = try ReshardClient(.init(url: url, adminToken: Self.adminToken, dataToken: Self.dataToken, caFile: files.ca))
        defer { Task { try? await client.shutdown() } }
        try await client.createTable("users", primaryKey: "id")
        #expect(try await client.put(["name": "Ada"], table: "users", pk: "ada").created)
        #expect(try await client.get([String: String].self, table: "users", pk: "ada")?.value == ["name": "Ada"])

        // Without the CA the certificate is not trusted; plain HTTP gets no answer.
        let untrusting = try ReshardClient(.init(url: url, adminToken: Self.adminToken))
        defer { Task { try? await untrusting.shutdown() } }
        await #expect(throws: ReshardClientError.self) { try await untrusting.cluster() }
        let plain = try ReshardClient(.init(url: "http://127.0.0.1:\(port)", adminToken: Self.adminToken))
        defer { Task { try? await plain.shutdown() } }
        await #expect(throws: ReshardClientError.self) { try await plain.cluster() }
        // A key file that is not a key stops the start with a message naming it.
        let broken = try scratch.start(
            ["--data", scratch.root + "/other", "--tls-cert-file", files.certificate, "--tls-key-file", files.ca], port: 0)
        #expect(await broken.waitForExit(seconds: 30))
        #expect(broken.log.contains("TLS key file"), "\(broken.logTail)")
    }
}
