import Foundation
import HTTPTypes
import Hummingbird
import ReshardAPI
import ReshardCore
import ReshardEngine
import ReshardStore
import ServiceLifecycle
import Synchronization

/// `GET /v1/events`: the cluster's event log as Server-Sent Events, for caches to follow. Each
/// message's `id` is the event's position, so a client that reconnects with `Last-Event-ID`
/// gets every event after it exactly once, in order, from any router. Not behind the admin
/// token: events name ranges, shards, tables and generations, no row data, and applications
/// (not operators) follow them.
struct EventRoutes {
    let router: ShardRouter
    let streams: EventStreams

    /// Streams open at once; more are refused with `503 too_many_streams`.
    static let maxStreams = 256
    /// How often an idle stream checks the log when no notification woke it, and how often it
    /// sends a comment, so that a proxy keeps it open and a gone client is noticed.
    static let pollEvery = Duration.seconds(1)
    static let keepAliveEvery = Duration.seconds(10)
    /// Events read per round.
    static let batch = 500

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("events") { request, _ -> Response in
            let query = try RequestInput.query(request)
            let maxMillis = try query["max_ms"].map {
                try RequestInput.count($0, name: "max_ms", in: 0...86_400_000, default: 0)
            }
            let resume = try Self.lastEventID(request, query: query)
            guard streams.enter() else {
                throw APIError(
                    .serviceUnavailable, code: "too_many_streams", message: "\(streams.limit) event streams are open; retry later",
                    headers: [.retryAfter: "1"])
            }
            let bounds: (first: UInt64, last: UInt64)
            do {
                bounds = try await router.events.bounds()
            } catch {
                streams.leave()
                throw error
            }
            let headers: HTTPFields = [
                .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store",
                .accelBuffering: "no",
            ]
            // HEAD: the headers a stream would start with, and no stream.
            guard request.method != .head else {
                streams.leave()
                return Response(status: .ok, headers: headers)
            }
            let events = router.events
            let generation = router.shardMap.generation
            let streams = streams
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    defer { streams.leave() }
                    try await Self.stream(
                        to: &writer, events: events, resume: resume, bounds: bounds, generation: generation,
                        until: maxMillis.map { ContinuousClock.now + .milliseconds($0) })
                    try await writer.finish(nil)
                })
        }
        refuseOtherMethods(on: group, path: "events", allowed: [.get])
    }

    /// Where to resume: `Last-Event-ID` (what an EventSource sends on reconnecting) or `after`
    /// in the query; digits only, else `400 invalid_last_event_id`.
    static func lastEventID(_ request: Request, query: [String: String]) throws -> UInt64? {
        let header = request.headers[values: .lastEventID]
        guard header.count <= 1 else {
            throw APIError(.badRequest, code: "invalid_last_event_id", message: "Last-Event-ID is given more than once")
        }
        let text = header.first ?? query["after"]
        guard let text else { return nil }
        guard let position = RequestInput.unsigned(text.trimmingCharacters(in: .whitespaces)) else {
            throw APIError(
                .badRequest, code: "invalid_last_event_id",
                message: "Last-Event-ID (or after) is an event's position, digits only, at most 18446744073709551615")
        }
        return position
    }

    /// Writes the stream's start, then every event as it is appended, until the client goes,
    /// `deadline` passes, or the server shuts down.
    static func stream(
        to writer: inout any ResponseBodyWriter, events: ClusterEvents, resume: UInt64?, bounds: (first: UInt64, last: UInt64),
        generation: UInt64, until deadline: ContinuousClock.Instant?
    ) async throws {
        var position: UInt64
        let start = API.EventStreamStart(position: bounds.last, oldest: bounds.first, generation: generation)
        if let resume, resume <= bounds.last, bounds.first == 0 || resume + 1 >= bounds.first {
            position = resume
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
        } else {
            // A first connection starts now; one whose position was trimmed away (or is ahead of
            // the log: another cluster, a restored store) starts over.
            position = bounds.last
            try await writer.write(message(id: bounds.last, event: resume == nil ? "hello" : "reset", start, retry: true))
        }
        let woken = WakeFlag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await change in events.changes() where change == .events { woken.set() }
            }
            defer { group.cancelAll() }
            var lastRead = ContinuousClock.now
            var lastWrite = ContinuousClock.now
            var read = true
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if read {
                    let batch = try await events.read(after: position, limit: batch)
                    for stored in batch {
                        try await writer.write(message(id: stored.position, event: stored.event.kind.rawValue, API.ClusterEvent(stored)))
                        position = stored.position
                        lastWrite = .now
                    }
                    lastRead = .now
                    if batch.count == Self.batch { continue }
                }
                if let deadline, ContinuousClock.now >= deadline { break }
                if ContinuousClock.now - lastWrite >= keepAliveEvery {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = .now
                }
                try await Task.sleep(for: .milliseconds(25))
                read = woken.take() || ContinuousClock.now - lastRead >= pollEvery
            }
        }
    }

    /// One SSE message: `id`, `event`, and the JSON on one `data` line (JSON text has no line
    /// breaks outside strings, and inside them they are escaped).
    static func message(id: UInt64, event: String, _ value: some Encodable, retry: Bool = false) throws -> ByteBuffer {
        let json = String(decoding: try API.encode(value), as: UTF8.self)
        return ByteBuffer(string: (retry ? "retry: 1000\n" : "") + "id: \(id)\nevent: \(event)\ndata: \(json)\n\n")
    }
}

/// Set by a notification, taken by the stream's loop.
final class WakeFlag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .relaxed) }
    func take() -> Bool { value.exchange(false, ordering: .relaxed) }
}

/// Counts the open event streams, to bound them.
final class EventStreams: Sendable {
    private let open = Mutex(0)
    let limit: Int

    init(limit: Int = EventRoutes.maxStreams) { self.limit = limit }

    func enter() -> Bool {
        open.withLock { open in
            guard open < limit else { return false }
            open += 1
            return true
        }
    }

    func leave() { open.withLock { $0 -= 1 } }
}

extension API.ClusterEvent {
    init(_ stored: StoredEvent) {
        let event = stored.event
        self.init(
            position: stored.position, atMs: stored.atMillis, kind: event.kind.rawValue, generation: event.generation,
            previousGeneration: event.previousGeneration, table: event.table?.rawValue,
            moves: event.moves.map {
                API.EventMove(start: $0.range.startHex, end: $0.range.endHex, from: $0.source.rawValue, to: $0.target.rawValue)
            }, migration: event.migration)
    }
}
