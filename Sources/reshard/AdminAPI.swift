import Foundation
import ReshardAPI
import ReshardClient

/// A JSON client of a router's API for the CLI, over one keep-alive connection. Bodies are
/// ReshardAPI's types both ways: the server encodes the very types decoded here.
actor AdminAPI {
    private let connection: HTTPConnection
    private let token: String

    private init(connection: HTTPConnection, token: String) {
        self.connection = connection
        self.token = token
    }

    /// Connects to `url` (`http://host:port`).
    static func connect(url: String, token: String) async throws -> AdminAPI {
        let (host, port) = try parse(url)
        return AdminAPI(connection: try await HTTPConnection.connect(host: host, port: port), token: token)
    }

    /// GETs `path` and decodes the JSON answer; an error answer becomes a `CLIError` with the server's message.
    func get<T: Decodable>(_ path: String) async throws -> T {
        try decode(try await connection.request("GET", path, headers: [("Authorization", "Bearer \(token)")]))
    }

    /// POSTs `body` as JSON to `path` and decodes the answer.
    func post<T: Decodable>(_ path: String, body: some Encodable) async throws -> T {
        let headers = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
        return try decode(try await connection.request("POST", path, headers: headers, body: Array(try API.encode(body))))
    }

    /// POSTs to `path` without a body (a command that reads none) and decodes the answer.
    func post<T: Decodable>(_ path: String) async throws -> T {
        try decode(try await connection.request("POST", path, headers: [("Authorization", "Bearer \(token)")]))
    }

    func close() async {
        await connection.close()
    }

    private func decode<T: Decodable>(_ response: HTTPClientResponse) throws -> T {
        guard (200..<300).contains(response.status) else {
            if let body = try? API.decode(API.ErrorBody.self, from: Data(response.body)) {
                throw CLIError("the server answered \(response.status) \(body.error.code): \(body.error.message)")
            }
            throw CLIError("the server answered \(response.status)")
        }
        return try API.decode(T.self, from: Data(response.body))
    }

    static func parse(_ url: String) throws -> (host: String, port: Int) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty
        else { throw CLIError("--url must look like http://host:port; got \(url)") }
        return (host, components.port ?? 80)
    }
}
