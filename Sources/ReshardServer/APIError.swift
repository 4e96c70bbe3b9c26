import Hummingbird
import ReshardAPI
import ReshardEngine

/// An error as the API answers it: a status, a stable code and `{"error":{"code","message"}}`.
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// A stable snake_case code.
    public let code: String
    /// A sentence for humans.
    public let message: String
    /// Extra headers (Retry-After, WWW-Authenticate, Allow).
    public let headers: HTTPFields

    /// An API error.
    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The JSON error body (`API.ErrorBody`).
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try jsonResponse(status, API.ErrorBody(code: code, message: message))
        for field in headers { response.headers.append(field) }
        return response
    }

    static let unauthorized = APIError(
        .unauthorized, code: "unauthorized", message: "this route needs Authorization: Bearer <admin token>",
        headers: [.wwwAuthenticate: "Bearer"])

    static func methodNotAllowed(_ allowed: [HTTPRequest.Method]) -> APIError {
        APIError(
            .methodNotAllowed, code: "method_not_allowed",
            message: "this route accepts \(allowed.map(\.rawValue).joined(separator: ", "))",
            headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
    }

    static func invalidBody(_ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_body", message: message)
    }

    /// The answer to a router failure.
    init(_ error: RouterError) {
        var headers: HTTPFields = [:]
        if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
        let status: HTTPResponse.Status =
            switch error.kind {
            case .badRequest: .badRequest
            case .notFound: .notFound
            case .conflict: .conflict
            case .preconditionFailed: .preconditionFailed
            case .tooLarge: .contentTooLarge
            case .unavailable: .serviceUnavailable
            }
        self.init(status, code: error.code, message: error.message, headers: headers)
    }
}

/// Renders every failure as a JSON error: router errors with their own status, Hummingbird's
/// no-route 404 and body-too-large 413, and anything unexpected as a logged 500 that says nothing
/// about internals.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as RouterError {
            return try APIError(error).response(from: request, context: context)
        } catch let error as HTTPError where error.status == .notFound {
            return try APIError(.notFound, code: "no_route", message: "no route for \(request.method) \(request.uri.path)")
                .response(from: request, context: context)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return try APIError(.contentTooLarge, code: "body_too_large", message: "the body is over \(maxBodyBytes) bytes")
                .response(from: request, context: context)
        } catch  where isClientAbort(error) {
            // The client left or broke the request: nothing to answer it with. Rethrown so the
            // connection closes (Hummingbird answers a parse error with 400 itself) and the
            // metrics middleware counts it apart from server errors.
            context.logger.debug("client abort", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw error
        } catch let error as any HTTPResponseError {
            let message = (error as? HTTPError)?.body ?? error.status.reasonPhrase
            return try APIError(error.status, code: "http_\(error.status.code)", message: message)
                .response(from: request, context: context)
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return try APIError(.internalServerError, code: "internal", message: "internal error")
                .response(from: request, context: context)
        }
    }
}
