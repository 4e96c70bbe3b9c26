import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ReshardAPI

/// A client of a Reshard router: typed rows (`Codable`), conditional writes, batches, paginated
/// listings and the admin API, over AsyncHTTPClient (HTTP/1.1, TLS when the URL is `https`).
///
/// Requests the router answers `503` (a range cutting over, a layout switching, a shard
/// failing) are retried with exponential backoff and jitter, never sooner than the answer's
/// `Retry-After`, within `Configuration.retryBudget`; a write only when the answer says that
/// nothing was written, so a retry never applies a conditional write twice.
public final class ReshardClient: Sendable {
    /// How to reach the router.
    public struct Configuration: Sendable {
        /// `http://host:port` or `https://host:port`, no path.
        public var url: String
        /// Sent as `Authorization: Bearer` on admin routes.
        public var adminToken: String?
        /// Sent as `Authorization: Bearer` on data routes, when the server requires one.
        public var dataToken: String?
        /// A PEM file of the certificate authorities to trust for `https` (the system's when nil).
        public var caFile: String?
        /// The longest one request may take, its body included.
        public var requestTimeout: Duration = .seconds(30)
        /// How long the retries of one call may wait in all, before the last answer is thrown.
        public var retryBudget: Duration = .seconds(20)
        /// The first retry's pause; each next one doubles, up to `maxBackoff`.
        public var initialBackoff: Duration = .milliseconds(20)
        /// The longest pause between two retries (a longer `Retry-After` is still honoured).
        public var maxBackoff: Duration = .seconds(1)
        /// The largest answer body read.
        public var maxResponseBytes = 64 << 20

        /// A configuration for the router at `url`.
        public init(url: String, adminToken: String? = nil, dataToken: String? = nil, caFile: String? = nil) {
            self.url = url
            self.adminToken = adminToken
            self.dataToken = dataToken
            self.caFile = caFile
        }
    }

    /// The configuration in use.
    public let configuration: Configuration
    private let http: HTTPClient
    private let base: String

    /// A client; call `shutdown()` when done with it.
    public init(_ configuration: Configuration) throws {
        guard let components = URLComponents(string: configuration.url), let scheme = components.scheme,
            ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty,
            components.path.isEmpty || components.path == "/", components.query == nil
        else {
            throw ReshardClientError.invalidConfiguration(
                "the URL must look like http://host:port or https://host:port; got \(configuration.url)")
        }
        var settings = HTTPClient.Configuration()
        if let caFile = configuration.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw ReshardClientError.invalidConfiguration("cannot read the CA file \(caFile): \(error)")
            }
            settings.tlsConfiguration = tls
        }
        // In nanoseconds: a sub-second request timeout must not become a read timeout of zero.
        settings.timeout = .init(connect: .seconds(5), read: .nanoseconds(configuration.requestTimeout.nanoseconds))
        settings.redirectConfiguration = .disallow
        settings.httpVersion = .http1Only
        settings.decompression = .disabled
        self.configuration = configuration
        self.base = configuration.url.hasSuffix("/") ? String(configuration.url.dropLast()) : configuration.url
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    }

    /// Closes the connections; the client cannot be used afterwards.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    deinit {
        // A client dropped without `shutdown()` (a command that exits early on an error) closes
        // its connections in the background instead of leaking them; after `shutdown()` this
        // second one fails quietly.
        let _: EventLoopFuture<Void> = http.shutdown()
    }

    /// Which token a route needs.
    public enum Access: Sendable {
        case data, admin, none
    }

    /// An answer: status, headers and body.
    public struct Answer: Sendable {
        public let status: Int
        public let headers: HTTPHeaders
        public let body: [UInt8]

        /// The body as text, for messages.
        public var text: String { String(decoding: body, as: UTF8.self) }
        /// The `ETag`'s version, when the answer carries one.
        public var etagVersion: UInt64? { headers.first(name: "ETag").flatMap(ETag.version) }

        /// The error body, if this is one.
        public var error: API.ErrorBody? { try? API.decode(API.ErrorBody.self, from: Data(body)) }
    }

    /// Whether a request may be sent again after an answer or a failure.
    enum Replay {
        /// Reads: any 503, and a failure to connect or to read the answer.
        case safe
        /// Writes: only answers that say nothing was written.
        case ifNotWritten
    }

    /// The 503 codes whose request the router did not apply.
    static let notWrittenCodes: Set<String> = ["range_moving", "layout_moving", "key_contended"]

    /// Sends one request, again after a retryable answer (see the type), and returns the final answer.
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], headers extra: [(String, String)] = [],
        body: [UInt8]? = nil, access: Access, replay: Replay
    ) async throws -> Answer {
        var url = base + path
        if !query.isEmpty { url += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let token: String? =
            switch access {
            case .admin: configuration.adminToken
            case .data: configuration.dataToken
            case .none: nil
            }
        if let token { request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let deadline = ContinuousClock.now + configuration.retryBudget
        var backoff = configuration.initialBackoff
        var transportRetries = 2
        while true {
            let answer: Answer
            do {
                let response = try await http.execute(request, timeout: .nanoseconds(Int64(configuration.requestTimeout.nanoseconds)))
                let bytes = try await response.body.collect(upTo: configuration.maxResponseBytes)
                answer = Answer(status: Int(response.status.code), headers: response.headers, body: Array(buffer: bytes))
            } catch {
                // A write whose answer was lost may have happened: only a read goes again, and
                // only twice (a router that is down should be reported, not waited for).
                guard replay == .safe, transportRetries > 0, ContinuousClock.now + backoff < deadline else {
                    throw ReshardClientError.transport("\(error)")
                }
                transportRetries -= 1
                try await Task.sleep(for: Self.jittered(backoff))
                backoff = min(backoff * 2, configuration.maxBackoff)
                continue
            }
            guard answer.status == 503, replay == .safe || Self.notWrittenCodes.contains(answer.error?.error.code ?? "") else {
                return answer
            }
            let retryAfter = answer.headers.first(name: "Retry-After").flatMap { UInt64($0) }.map { Duration.seconds($0) } ?? .zero
            let pause = max(Self.jittered(backoff), retryAfter)
            guard ContinuousClock.now + pause < deadline else { return answer }
            try await Task.sleep(for: pause)
            backoff = min(backoff * 2, configuration.maxBackoff)
        }
    }

    /// Sends a request and decodes its 2xx answer as `T`, or throws the API's error.
    func call<T: Decodable>(
        _ type: T.Type, _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
        access: Access, replay: Replay
    ) async throws -> T {
        let answer = try await send(method, path, query: query, body: body, access: access, replay: replay)
        try Self.requireSuccess(answer)
        return try Self.decode(T.self, answer.body)
    }

    static func requireSuccess(_ answer: Answer) throws {
        guard (200..<300).contains(answer.status) else { throw ReshardClientError.api(answer) }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do {
            return try API.decode(T.self, from: Data(bytes))
        } catch {
            throw ReshardClientError.decoding("\(T.self): \(error)")
        }
    }

    /// Up to half again as long, so that clients told to wait alike do not return together.
    static func jittered(_ pause: Duration) -> Duration {
        pause + pause * Double.random(in: 0..<0.5)
    }

    /// `text` percent-encoded as one path segment or query value (RFC 3986 unreserved kept).
    public static func escape(_ text: String) -> String { API.percentEncoded(text) }
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Why a call failed.
public enum ReshardClientError: Error, Sendable, CustomStringConvertible {
    /// The router answered with an error: its status, code and message (and `Retry-After`).
    case api(ReshardClient.Answer)
    /// No answer: the connection failed or timed out.
    case transport(String)
    /// An answer that is not what the API documents.
    case decoding(String)
    /// The client's own configuration is unusable.
    case invalidConfiguration(String)

    /// The HTTP status of an API error.
    public var status: Int? {
        if case .api(let answer) = self { return answer.status }
        return nil
    }

    /// The API's error code, such as `precondition_failed`.
    public var code: String? {
        if case .api(let answer) = self { return answer.error?.error.code ?? "http_\(answer.status)" }
        return nil
    }

    /// Whether this is a `412`: a condition did not hold and nothing was written.
    public var isPreconditionFailed: Bool { status == 412 }

    public var description: String {
        switch self {
        case .api(let answer):
            if let body = answer.error { return "the server answered \(answer.status) \(body.error.code): \(body.error.message)" }
            return "the server answered \(answer.status)"
        case .transport(let detail): return "no answer from the server: \(detail)"
        case .decoding(let detail): return "an answer the client cannot read: \(detail)"
        case .invalidConfiguration(let detail): return detail
        }
    }
}

/// Entity tags of rows: a row's tag is its version, `"17"`.
public enum ETag {
    /// The tag of version `version`.
    public static func of(_ version: UInt64) -> String { "\"\(version)\"" }

    /// The version a strong tag names.
    public static func version(_ tag: String) -> UInt64? {
        guard tag.count >= 3, tag.first == "\"", tag.last == "\"" else { return nil }
        return UInt64(tag.dropFirst().dropLast())
    }
}
