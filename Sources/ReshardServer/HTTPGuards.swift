import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import ReshardAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A request whose body did not arrive in time (see `RequestReadDeadlineHandler`).
struct RequestReadTimeout: Error, CustomStringConvertible {
    var description: String { "the request was not read in time" }
}

/// Closes a connection whose request has not arrived whole `timeout` after its head.
///
/// Hummingbird's idle timeout covers a client that sends nothing (headers included, since a
/// partial head decodes to no part), but it is reset by every body part, so a client trickling
/// a byte a second could hold a connection and its buffer forever. One instance per connection.
///
/// The timer is armed only when a socket read ends with a request still incomplete: most
/// requests arrive whole in one read, and a timer scheduled and cancelled for each of them is
/// work (an allocation, a heap insert and removal on the event loop) on every request for the
/// rare slow one. The deadline counts from the end of the read that brought the head,
/// microseconds after it.
final class RequestReadDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// A head has arrived and its request's end has not.
    private var incomplete = false

    init(timeout: TimeAmount) { self.timeout = timeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            disarm()
            incomplete = true
        case .body:
            break
        case .end:
            disarm()
            incomplete = false
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if incomplete, deadline == nil {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: timeout) {
                // The route reading the body sees this error; the close frees the buffer.
                bound.value.fireErrorCaught(RequestReadTimeout())
                bound.value.close(promise: nil)
            }
        }
        context.fireChannelReadComplete()
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }
}

/// Gives the 400 Hummingbird writes for a request it cannot parse (an oversized header, a bad
/// Content-Length) the API's JSON error body instead of none. One instance per connection.
final class ParserErrorBodyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var parserError: HTTPParserError?

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError { parserError = error }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let error = parserError, case .head(var head) = unwrapOutboundIn(data), head.status == .badRequest,
            head.headerFields[.contentLength] == "0",
            // Two strings always encode; were it ever not so, the bare 400 still goes out.
            let json = try? API.encode(API.ErrorBody(code: "malformed_request", message: "malformed HTTP request: \(error)"))
        else {
            context.write(data, promise: promise)
            return
        }
        parserError = nil
        var body = ByteBuffer(bytes: json)
        body.writeString("\n")
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[.contentType] = "application/json; charset=utf-8"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: promise)
    }
}

/// Whether `error` means the client went away or broke the protocol mid-request (closed the
/// socket, reset it, sent a malformed body, or ran out of time): the client's failure, answered
/// by closing the connection and counted apart from server errors, never a logged 500.
func isClientAbort(_ error: any Error) -> Bool {
    switch error {
    case is HTTPParserError, is RequestReadTimeout, is CancellationError: return true
    case let error as IOError: return [ECONNRESET, EPIPE, ECONNABORTED].contains(error.errnoCode)
    case let error as ChannelError:
        return error == .ioOnClosedChannel || error == .eof || error == .outputClosed || error == .inputClosed
    default: return false
    }
}

/// A short name for the kind of abort, for the metric's label.
func clientAbortReason(_ error: any Error) -> String {
    switch error {
    case is RequestReadTimeout: "timeout"
    case is CancellationError: "shutdown"
    case let error as HTTPParserError where error == .invalidEOFState: "disconnected"
    case is HTTPParserError: "malformed"
    default: "disconnected"
    }
}
