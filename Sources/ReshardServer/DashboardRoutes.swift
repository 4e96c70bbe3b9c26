import HTTPTypes
import Hummingbird
import ReshardAPI
import ReshardEngine

/// The dashboard's files, embedded by scripts/embed-dashboard from the repository's dashboard/.
enum DashboardAssets {
    /// Path under the server → (content type, text). The page at `/` is `index.html`.
    static let files: [String: (contentType: String, text: String)] = [
        "index.html": ("text/html; charset=utf-8", indexHTML + "\n"),
        "app.js": ("text/javascript; charset=utf-8", appJS + "\n"),
        "chart.js": ("text/javascript; charset=utf-8", chartJS + "\n"),
        "style.css": ("text/css; charset=utf-8", styleCSS + "\n"),
    ]
}

/// `GET /` (the dashboard), its files under `/dashboard/`, and `GET /v1/dashboard`, the figures
/// it shows. All are open: the figures are an allow-list that names no key, row, address or
/// error text (see `API.Dashboard`); the page's admin actions send the token the operator types.
struct DashboardRoutes {
    let source: DashboardSource

    /// Same-origin only: the page loads nothing from elsewhere and may not be framed.
    static let pageHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        .xContentTypeOptions: "nosniff",
        .referrerPolicy: "no-referrer",
        .cacheControl: "no-cache",
    ]

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ -> Response in try Self.asset("index.html") }
        router.get("dashboard/:file") { _, context -> Response in
            try Self.asset(try RequestInput.path(context, "file"))
        }
        router.group("v1").get("dashboard") { _, _ -> Response in
            try jsonResponse(.ok, try await source.dashboard())
        }
        let root = router.group()
        refuseOtherMethods(on: root, path: "/", allowed: [.get])
        refuseOtherMethods(on: root, path: "dashboard/:file", allowed: [.get])
        refuseOtherMethods(on: root, path: "v1/dashboard", allowed: [.get])
    }

    static func asset(_ name: String) throws -> Response {
        guard let file = DashboardAssets.files[name] else {
            throw APIError(.notFound, code: "not_found", message: "the dashboard has no file \(name)")
        }
        var headers = pageHeaders
        headers[.contentType] = file.contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: file.text)))
    }
}
