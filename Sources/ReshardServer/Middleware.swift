import HTTPTypes
import Hummingbird
import Metrics
import ReshardCore
import ReshardEngine
import Synchronization

/// Admits a request only with `Authorization: Bearer <token>` for one of `tokens`, compared in
/// constant time.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: [[UInt8]]
    let refusal: APIError

    init(token: String) {
        tokens = [Array(token.utf8)]
        refusal = .unauthorized
    }

    /// The data routes' guard: the data token, or the admin token.
    init(dataToken: String, adminToken: String) {
        tokens = [Array(dataToken.utf8), Array(adminToken.utf8)]
        refusal = APIError(
            .unauthorized, code: "unauthorized", message: "this server's data routes need Authorization: Bearer <data token>",
            headers: [.wwwAuthenticate: "Bearer"])
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { throw refusal }
        let given = Array(header.utf8.dropFirst(7))
        // Every token is compared, so the time taken says nothing about which one came close.
        var admitted = false
        for token in tokens { admitted = Self.constantTimeEquals(given, token) || admitted }
        guard admitted else { throw refusal }
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
/// metrics factory (so tests and the server each get their own registry). Handles are cached:
/// the label space is small (routes × methods × statuses) and a registry lookup per request
/// showed up in profiles.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let factory: any MetricsFactory
    private let handles = HandleCache()

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch  where isClientAbort(error) {
            handles.abort(reason: clientAbortReason(error), factory: factory).increment()
            throw error
        }
        let route = context.endpointPath ?? "unmatched"
        let (counter, timer) = handles.get(route: route, method: request.method.rawValue, status: response.status.code, factory: factory)
        counter.increment()
        timer.record(duration: ContinuousClock.now - start)
        return response
    }

    final class HandleCache: Sendable {
        private struct Key: Hashable {
            let route: String
            let method: String
            let status: Int
        }

        private let cache = Mutex<[Key: (Counter, Metrics.Timer)]>([:])
        private let aborts = Mutex<[String: Counter]>([:])

        /// `reshard_http_client_aborts_total{reason}`: requests the client abandoned or broke
        /// (disconnected, malformed, too slow, cut by shutdown), which are not server errors.
        func abort(reason: String, factory: any MetricsFactory) -> Counter {
            aborts.withLock { counters in
                if let counter = counters[reason] { return counter }
                let counter = Counter(label: "reshard_http_client_aborts_total", dimensions: [("reason", reason)], factory: factory)
                counters[reason] = counter
                return counter
            }
        }

        func get(route: String, method: String, status: Int, factory: any MetricsFactory) -> (Counter, Metrics.Timer) {
            let key = Key(route: route, method: method, status: status)
            if let cached = cache.withLock({ $0[key] }) { return cached }
            let dimensions = [("route", route), ("method", method), ("status", String(status))]
            let made = (
                Counter(label: "reshard_http_requests_total", dimensions: dimensions, factory: factory),
                Metrics.Timer(label: "reshard_http_request_duration_seconds", dimensions: dimensions, factory: factory)
            )
            cache.withLock { $0[key] = made }
            return made
        }
    }
}

/// Tags every data response (an error too: a cache may keep a miss) with the shard map
/// generation in force when the request arrived (`Reshard-Generation`), and for a table's
/// routes its layout generation (`Reshard-Layout-Generation`), so a client cache can tag its
/// entries and drop those older than an event of `GET /v1/events` for their range or table.
/// Read before routing: a tag is never newer than the map the request was routed by.
struct GenerationMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let router: ShardRouter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let generation = router.shardMap.generation
        let layout = context.parameters.get("table").flatMap { try? router.table(named: $0).layoutGeneration }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        } catch let error as RouterError {
            response = try APIError(error).response(from: request, context: context)
        }
        response.headers[.reshardGeneration] = String(generation)
        if let layout { response.headers[.reshardLayoutGeneration] = String(layout) }
        return response
    }
}
