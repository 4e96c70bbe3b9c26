import Foundation
import ReshardAPI
import ReshardClient

/// The CLI's view of a router's admin API: ReshardClient's, with its failures as `CLIError`s
/// that carry the server's message.
struct AdminAPI: Sendable {
    private let client: ReshardClient

    /// A client of the router at `url` (`http://host:port`, or `https://` with `caFile` to trust).
    static func connect(url: String, token: String, caFile: String? = nil) async throws -> AdminAPI {
        do {
            return AdminAPI(client: try ReshardClient(.init(url: url, adminToken: token, caFile: caFile)))
        } catch {
            throw CLIError("--url: \(error)")
        }
    }

    /// GETs `path` and decodes the JSON answer.
    func get<T: Decodable>(_ path: String) async throws -> T {
        try await cli { try await client.adminGet(T.self, path) }
    }

    /// POSTs `body` as JSON to `path` and decodes the answer.
    func post<T: Decodable>(_ path: String, body: some Encodable) async throws -> T {
        try await cli { try await client.adminPost(T.self, path, body: body) }
    }

    /// POSTs to `path` without a body (a command that reads none) and decodes the answer.
    func post<T: Decodable>(_ path: String) async throws -> T {
        try await cli { try await client.adminPost(T.self, path) }
    }

    func close() async {
        try? await client.shutdown()
    }

    private func cli<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ReshardClientError {
            throw CLIError(error.description)
        }
    }
}
