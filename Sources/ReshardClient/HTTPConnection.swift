import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A complete HTTP response; the body is fully buffered.
public struct HTTPClientResponse: Sendable {
    /// The status code, e.g. 200.
    public let status: Int
    /// The header fields in the order the server sent them, repeated names included.
    public let headers: [(String, String)]
    /// The decoded body (chunked encoding already removed).
    public let body: [UInt8]

    /// Creates a response; useful for stubbing the client in tests.
    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of the header `name`, compared ASCII case-insensitively, or nil.
    public func header(_ name: String) -> String? {
        // Lower-cases only A–Z, so punctuation allowed in field names is never conflated.
        func lower(_ byte: UInt8) -> UInt8 { byte &- 65 < 26 ? byte | 0x20 : byte }
        return headers.first { $0.0.utf8.elementsEqual(name.utf8) { lower($0) == lower($1) } }?.1
    }

    /// The body decoded as UTF-8; invalid sequences become U+FFFD.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why a connection or request failed; compare with `==` against the static members.
public struct HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Equatable {
        case connectFailed(host: String, port: Int, reason: String)
        case timedOut, connectionClosed, malformedResponse
    }
    private let code: Code

    /// The connection could not be established (refused, unresolvable host, connect timeout…).
    public static func connectFailed(host: String, port: Int, reason: String) -> Self {
        Self(code: .connectFailed(host: host, port: port, reason: reason))
    }
    /// The request did not complete within its timeout; the connection has been closed.
    public static let timedOut = Self(code: .timedOut)
    /// The connection is closed (by the server, by `close()`, or after an earlier failure).
    public static let connectionClosed = Self(code: .connectionClosed)
    /// The server sent bytes that are not a valid HTTP/1.x response; the connection has been closed.
    public static let malformedResponse = Self(code: .malformedResponse)

    /// A one-line, human-readable explanation suitable for CLI output.
    public var description: String {
        switch code {
        case .connectFailed(let host, let port, let reason): "cannot connect to \(host):\(port): \(reason)"
        case .timedOut: "HTTP request timed out"
        case .connectionClosed: "HTTP connection is closed"
        case .malformedResponse: "server sent a malformed HTTP response"
        }
    }
}

/// One persistent HTTP/1.1 connection. Call `close()` when done; dropping it unclosed also closes the socket.
public actor HTTPConnection {
    private typealias Inbound = NIOAsyncChannelInboundStream<HTTPClientResponsePart>
    private typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private typealias Responses = Inbound.AsyncIterator
    // While `busy`, one request owns the response iterator and the others wait in `waiters`.
    private enum State { case idle(Responses), busy, closed }

    private let channel: any Channel
    private let outbound: Outbound
    private let authority: String
    private let timeoutHandler: TimeoutHandler
    private var state: State
    private var waiters = CircularBuffer<CheckedContinuation<Void, Never>>()

    private init(channel: any Channel, inbound: Inbound, outbound: Outbound, authority: String) {
        self.channel = channel
        self.outbound = outbound
        self.authority = authority
        self.timeoutHandler = TimeoutHandler(channel: channel)
        self.state = .idle(inbound.makeAsyncIterator())
    }

    deinit { channel.close(promise: nil) }

    /// Opens a TCP connection; throws `connectFailed` (also when `timeout` elapses first).
    public static func connect(
        host: String,
        port: Int,
        timeout: Duration = .seconds(10),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTPConnection {
        guard let bootstrap = ClientBootstrap(validatingGroup: eventLoopGroup) else {
            throw HTTPClientError.connectFailed(host: host, port: port, reason: "event loop group has no sockets")
        }
        let asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            asyncChannel = try await bootstrap.connectTimeout(TimeAmount(timeout))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            // NIO's own wording ("connection reset (error set): …") hides the plain cause; name it.
            let underlying = (error as? NIOConnectionError)?.connectionErrors.last?.error
            let reason = (underlying as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? underlying.map { "\($0)" }
            throw HTTPClientError.connectFailed(host: host, port: port, reason: reason ?? "\(error)")
        }
        // NIO deprecates the unscoped `inbound`/`outbound`. A keep-alive connection outlives any single call,
        // so a task holds the `executeThenClose` scope open until the channel closes (close(), timeout, server,
        // deinit); the scope then still finishes the writer for us.
        let (inbound, outbound) = await withCheckedContinuation { continuation in
            Task {
                try? await asyncChannel.executeThenClose { inbound, outbound in
                    continuation.resume(returning: (inbound, outbound))
                    try await asyncChannel.channel.closeFuture.get()
                }
            }
        }
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"  // IPv6 literals need brackets
        return HTTPConnection(channel: asyncChannel.channel, inbound: inbound, outbound: outbound, authority: authority)
    }

    /// Sends one request and waits for its whole response; requests on one connection are sequential (the actor serialises them).
    ///
    /// Throws `HTTPClientError` or `CancellationError`. Any failure after the request was handed to NIO closes the
    /// connection, since the HTTP/1.1 stream position is then unknown; nothing is retried. A method, path or header
    /// that NIO's validator rejects (e.g. containing CR/LF) is never sent and surfaces as `malformedResponse`.
    public func request(
        _ method: String,
        _ path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> HTTPClientResponse {
        var responses = try await acquire()
        // A per-request event-loop timer (not a racing child task): no task allocation, and it fires on the loop.
        guard let deadline = try? channel.eventLoop.scheduleCallback(in: TimeAmount(timeout), handler: timeoutHandler) else {
            markClosed()  // only fails when the event loop is shutting down
            throw HTTPClientError.connectionClosed
        }
        defer { deadline.cancel() }
        do {
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
            head.headers = HTTPHeaders(headers)
            if !head.headers.contains(name: "host") { head.headers.add(name: "Host", value: authority) }
            if let body {
                head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
                let buffer = channel.allocator.buffer(bytes: body)
                // One write call means one flush, so head and body leave in a single syscall.
                try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(buffer)), .end(nil)])
            } else {
                // Without a length NIO frames these as chunked, which some servers (e.g. Python's) cannot parse.
                switch head.method {
                case .POST, .PUT, .PATCH: head.headers.replaceOrAdd(name: "Content-Length", value: "0")
                default: break
                }
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
            }
            let (response, keepAlive) = try await readResponse(&responses)
            release(responses, keepAlive: keepAlive)
            return response
        } catch {
            throw fail(error)
        }
    }

    /// Closes the connection and waits until the socket is closed; queued and in-flight requests fail with `connectionClosed`. Idempotent.
    public func close() async {
        markClosed()
        try? await channel.closeFuture.get()
    }

    // The actor is re-entrant across awaits, so exclusive use of the stream is handed out explicitly, in FIFO order.
    private func acquire() async throws -> Responses {
        var requeued = false
        while true {
            switch state {
            case .closed:
                throw HTTPClientError.connectionClosed
            case .busy:
                // A waiter that lost the race to a newcomer goes back to the front to keep FIFO order.
                await withCheckedContinuation { requeued ? waiters.prepend($0) : waiters.append($0) }
                requeued = true
            case .idle(let responses):
                if Task.isCancelled {
                    waiters.popFirst()?.resume()  // pass the turn on, or the next waiter would hang
                    throw CancellationError()
                }
                guard channel.isActive else {
                    markClosed()
                    throw HTTPClientError.connectionClosed
                }
                state = .busy
                return responses
            }
        }
    }

    private func release(_ responses: Responses, keepAlive: Bool) {
        guard case .busy = state, keepAlive else { return markClosed() }  // close() may have run meanwhile
        state = .idle(responses)
        waiters.popFirst()?.resume()
    }

    private func markClosed() {
        state = .closed
        channel.close(promise: nil)
        while let waiter = waiters.popFirst() { waiter.resume() }
    }

    private func fail(_ error: any Error) -> any Error {
        markClosed()
        if timeoutHandler.didFire { return HTTPClientError.timedOut }
        if Task.isCancelled || error is CancellationError { return CancellationError() }
        switch error as? HTTPParserError {
        case .none, .invalidEOFState?: return HTTPClientError.connectionClosed  // EOF mid-response is a close
        case .some: return HTTPClientError.malformedResponse
        }
    }

    private func readResponse(_ responses: inout Responses) async throws -> (HTTPClientResponse, keepAlive: Bool) {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        // `isolation:` keeps the non-Sendable iterator on this actor instead of sending it to the generic executor.
        while let part = try await responses.next(isolation: self) {
            switch part {
            case .head(let responseHead):
                head = responseHead
                if let length = responseHead.headers.first(name: "content-length").flatMap(Int.init) {
                    body.reserveCapacity(min(length, 1 << 22))  // capped: the header is untrusted
                }
            case .body(let buffer):
                body.append(contentsOf: buffer.readableBytesView)
            case .end:
                guard let head else { throw HTTPClientError.malformedResponse }
                let fields = head.headers.map { ($0.name, $0.value) }
                return (HTTPClientResponse(status: Int(head.status.code), headers: fields, body: body), head.isKeepAlive)
            }
        }
        throw HTTPClientError.connectionClosed
    }
}

/// Fires on the channel's event loop: records why the channel is about to close, then closes it.
private final class TimeoutHandler: NIOScheduledCallbackHandler, Sendable {
    private let channel: any Channel
    private let fired = Atomic(false)  // per connection: once set, the connection is closed for good

    init(channel: any Channel) { self.channel = channel }

    var didFire: Bool { fired.load(ordering: .acquiring) }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        fired.store(true, ordering: .releasing)  // before closing, so the request woken by the close sees why
        channel.close(promise: nil)
    }
}
