import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import Testing

@testable import ReshardServer

/// The dashboard's files are the repository's, and `GET /v1/dashboard` is open but tells
/// nothing about the data: no key, no row, no address, no error text.
@Suite struct DashboardAssetTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("dashboard")

    @Test func theServedFilesAreTheRepositorysDashboard() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).sorted()
        #expect(names == DashboardAssets.files.keys.sorted(), "run scripts/embed-dashboard")
        for name in names {
            let file = try String(contentsOf: Self.folder.appendingPathComponent(name), encoding: .utf8)
            #expect(DashboardAssets.files[name]?.text == file, "dashboard/\(name) changed: run scripts/embed-dashboard")
        }
    }

    /// The page builds its DOM from text only: no markup string is ever parsed.
    @Test func thePageNeverParsesMarkup() {
        for name in ["app.js", "chart.js"] {
            let text = DashboardAssets.files[name]?.text ?? ""
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                #expect(!text.contains(sink), "\(name) uses \(sink)")
            }
        }
    }
}

extension HTTPAPITests {
    @Test func theDashboardIsOpenAndShowsFiguresOnly() async throws {
        try await withAPI { client in
            for index in 0..<40 {
                let put = try await client.execute(
                    uri: "/v1/tables/users/rows/secret-key-\(index)", method: .put, body: ByteBuffer(string: #"{"card":"4111-1111"}"#))
                #expect(put.status == .created)
            }
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok && page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(page.headers[.xContentTypeOptions] == "nosniff")
            #expect(String(buffer: page.body).contains("<script src=\"/dashboard/app.js\">"))
            for (file, type) in [("app.js", "text/javascript"), ("chart.js", "text/javascript"), ("style.css", "text/css")] {
                let asset = try await client.execute(uri: "/dashboard/\(file)", method: .get)
                #expect(asset.status == .ok && asset.headers[.contentType]?.hasPrefix(type) == true, "\(file)")
            }
            let head = try await client.execute(uri: "/dashboard/app.js", method: .head)
            #expect(head.status == .ok && head.body.readableBytes == 0)
            for hostile in ["nope.js", "..%2Fopenapi.yaml", "%00", "app.js%00", String(repeating: "a", count: 4_000)] {
                let response = try await client.execute(uri: "/dashboard/\(hostile)", method: .get)
                #expect(response.status == .notFound || response.status == .badRequest, "\(hostile): \(response.status)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            let invalid = try await client.execute(uri: "/dashboard/%FF", method: .get)
            try expectError(invalid, .badRequest, "invalid_path")
            for uri in ["/v1/dashboard", "/", "/dashboard/app.js"] {
                let post = try await client.execute(uri: uri, method: .post)
                #expect(post.status == .methodNotAllowed, "\(uri)")
            }

            // The report route refuses hostile ids with a 4xx JSON error, and needs the token.
            try expectError(try await client.execute(uri: "/v1/migrations/m1/report", method: .get), .unauthorized, "unauthorized")
            for hostile in ["%00", "%FF", "m%0A1", "18446744073709551615", "-1", String(repeating: "m", count: 4_000)] {
                let response = try await client.execute(uri: "/v1/migrations/\(hostile)/report", method: .get, headers: auth)
                #expect(response.status == .notFound || response.status == .badRequest, "\(hostile.prefix(20)): \(response.status)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            // No token needed, and nothing that quotes the data or where it lives.
            let response = try await client.execute(uri: "/v1/dashboard", method: .get)
            #expect(response.status == .ok)
            let text = String(buffer: response.body)
            for secret in ["secret-key", "4111", "sqlite\"", ".sqlite", "address", "/tmp", "token"] where secret != "sqlite\"" {
                #expect(!text.contains(secret), "the open figures mention \(secret)")
            }
            let figures = try API.decode(API.Dashboard.self, from: Data(buffer: response.body))
            #expect(figures.generation == 1 && figures.shards.count == 4 && figures.migration == nil && figures.history.isEmpty)
            #expect(figures.shards.reduce(0) { $0 + $1.rows } == 40)
            #expect(figures.shards.allSatisfy { $0.backend == "sqlite" && $0.changeCapture != nil && $0.bytes > 0 || $0.rows == 0 })
            #expect(figures.routers.first?.name == figures.router && figures.routers.first?.leader == true)
            #expect(figures.ranges.first?.start == "0x0000000000000000" && figures.ranges.last?.end == "0x10000000000000000")
        }
    }
}
