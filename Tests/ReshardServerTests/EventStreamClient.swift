import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A Server-Sent Events client for the tests: one loopback connection, the request written
/// once, the response read on a thread of its own (chunked framing undone), each message
/// (`id`, `event`, `data`) kept in arrival order. `close()` shuts the socket, as a client
/// that goes away would.
final class EventStreamClient: Sendable {
    struct Message: Sendable, Hashable {
        var id: String?
        var event: String
        var data: String
    }

    private let socket: Int32
    private let state = Mutex<(messages: [Message], status: Int?, ended: Bool)>(([], nil, false))

    /// Connects to `port` and asks for `/v1/events`, resuming after `lastEventID` if given.
    init(port: Int, lastEventID: String? = nil, path: String = "/v1/events") throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CocoaError(.fileReadUnknown) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw CocoaError(.fileReadUnknown)
        }
        socket = fd
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let thread = Thread { [self] in self.read() }
        thread.start()
    }

    var messages: [Message] { state.withLock { $0.messages } }
    var status: Int? { state.withLock { $0.status } }
    var ended: Bool { state.withLock { $0.ended } }

    /// Waits up to `seconds` for a message `matching`; returns every message so far.
    func wait(seconds: Double = 60, until matching: ([Message]) -> Bool) async -> [Message] {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1_000))
        while ContinuousClock.now < deadline {
            let now = messages
            if matching(now) || ended { return now }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return messages
    }

    func close() { shutdown(socket, Int32(SHUT_RDWR)) }

    private func read() {
        var raw: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var headerDone = false
        var chunked = false
        var body: [UInt8] = []
        var text = ""
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            raw += buffer[0..<count]
            if !headerDone, let end = find(raw, [13, 10, 13, 10]) {
                let head = String(decoding: raw[0..<end], as: UTF8.self)
                let statusCode = head.split(separator: " ").dropFirst().first.flatMap { Int($0) }
                chunked = head.lowercased().contains("transfer-encoding: chunked")
                state.withLock { $0.status = statusCode }
                raw.removeFirst(end + 4)
                headerDone = true
            }
            guard headerDone else { continue }
            if chunked {
                // size CRLF data CRLF, repeated; a zero size ends the body.
                while let line = find(raw, [13, 10]), let size = Int(String(decoding: raw[0..<line], as: UTF8.self), radix: 16),
                    raw.count >= line + 2 + size + 2
                {
                    body += raw[(line + 2)..<(line + 2 + size)]
                    raw.removeFirst(line + 2 + size + 2)
                    if size == 0 { break }
                }
            } else {
                body += raw
                raw = []
            }
            text += String(decoding: body, as: UTF8.self)
            body = []
            while let range = text.range(of: "\n\n") {
                let block = String(text[..<range.lowerBound])
                text = String(text[range.upperBound...])
                var message = Message(id: nil, event: "message", data: "")
                var hasData = false
                for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix("id: ") { message.id = String(line.dropFirst(4)) }
                    if line.hasPrefix("event: ") { message.event = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") {
                        message.data = String(line.dropFirst(6))
                        hasData = true
                    }
                }
                if hasData { state.withLock { $0.messages.append(message) } }
            }
        }
        Glibc.close(socket)
        state.withLock { $0.ended = true }
    }

    private func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index..<(index + needle.count)].elementsEqual(needle) {
            return index
        }
        return nil
    }
}
