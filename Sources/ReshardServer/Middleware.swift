import Hummingbird
import Metrics

/// Admits a request only with `Authorization: Bearer <token>`, compared in constant time.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) {
        self.token = Array(token.utf8)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            Self.constantTimeEquals(Array(header.utf8.dropFirst(7)), token)
        else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    /// Compares without an early exit, so response time says nothing about how much matched.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// Counts and times every request by route template, method and status, through an injected
/// metrics factory (so tests and the server each get their own registry).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let dimensions = [
            ("route", context.endpointPath ?? "unmatched"),
            ("method", request.method.rawValue),
            ("status", String(response.status.code)),
        ]
        Counter(label: "reshard_http_requests_total", dimensions: dimensions, factory: factory).increment()
        Metrics.Timer(label: "reshard_http_request_duration_seconds", dimensions: dimensions, factory: factory)
            .record(duration: ContinuousClock.now - start)
        return response
    }
}
