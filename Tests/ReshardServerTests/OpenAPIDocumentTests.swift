import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ReshardServer

/// The contract the fuzzer checks the server against is the one the server hands out.
@Suite struct OpenAPIDocumentTests {
    static let repositoryDocument = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("openapi.yaml")

    @Test func theServedDocumentIsTheRepositorysOpenAPIYAML() throws {
        let file = try String(contentsOf: Self.repositoryDocument, encoding: .utf8)
        #expect(OpenAPIDocument.yaml + "\n" == file, "openapi.yaml changed: run scripts/embed-openapi")
    }

    @Test func everyRouteTemplateTheServerServesIsInTheDocument() throws {
        let file = try String(contentsOf: Self.repositoryDocument, encoding: .utf8)
        let templates = [
            "/", "/dashboard/{file}", "/v1/dashboard", "/healthz", "/metrics", "/openapi.yaml", "/v1/tables", "/v1/tables/{table}/rows",
            "/v1/tables/{table}/rows/{pk}", "/v1/tables/{table}/rows:batch_get", "/v1/tables/{table}/rows:batch_write",
            "/v1/shards", "/v1/cluster", "/v1/load", "/v1/events", "/v1/migrations", "/v1/migrations/{id}",
            "/v1/migrations/{id}/verification", "/v1/migrations/{id}/report",
            "/v1/migrations/{id}/approve", "/v1/migrations/{id}/pause", "/v1/migrations/{id}/resume", "/v1/migrations/{id}/rollback",
            "/v1/migrations/{id}/settings",
        ]
        for template in templates {
            #expect(file.contains("\n  \(template):"), "\(template) is not a path of openapi.yaml")
        }
    }
}

extension HTTPAPITests {
    @Test func theDocumentIsServedAsYAML() async throws {
        try await withAPI { client in
            let response = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("application/yaml") == true)
            #expect(String(buffer: response.body).hasPrefix("openapi: 3.1"))
        }
    }
}
