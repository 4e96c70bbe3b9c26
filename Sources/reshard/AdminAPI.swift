import Foundation
import ReshardClient

/// A JSON client of a router's API for the CLI, over one keep-alive connection.
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

    /// POSTs a JSON body to `path` and decodes the answer.
    func post<T: Decodable>(_ path: String, json: String) async throws -> T {
        let headers = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
        return try decode(try await connection.request("POST", path, headers: headers, body: Array(json.utf8)))
    }

    func close() async {
        await connection.close()
    }

    private func decode<T: Decodable>(_ response: HTTPClientResponse) throws -> T {
        guard (200..<300).contains(response.status) else {
            if let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)) {
                throw CLIError("the server answered \(response.status) \(body.error.code): \(body.error.message)")
            }
            throw CLIError("the server answered \(response.status)")
        }
        return try JSONDecoder().decode(T.self, from: Data(response.body))
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    static func parse(_ url: String) throws -> (host: String, port: Int) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty
        else { throw CLIError("--url must look like http://host:port; got \(url)") }
        return (host, components.port ?? 80)
    }
}
