import Foundation
import Logging
import ReshardAPI
import ReshardClient
import ReshardEngine
import ReshardStore

/// Where a webhook posts: a plain `http://host[:port]/path` (the client speaks no TLS).
public struct WebhookTarget: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let path: String

    /// Parses `text`; nil unless it is `http://`, names a host, and carries no user info,
    /// query fragment or control characters.
    public init?(_ text: String) {
        guard text.utf8.count <= 2_048, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }),
            let components = URLComponents(string: text), components.scheme == "http", let host = components.host, !host.isEmpty,
            components.user == nil, components.password == nil, components.fragment == nil
        else { return nil }
        let port = components.port ?? 80
        guard (1...65_535).contains(port) else { return nil }
        self.host = host
        self.port = port
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.path = components.percentEncodedQuery.map { path + "?" + $0 } ?? path
    }

    public var description: String { "http://\(host):\(port)\(path)" }
}

/// Posts every event of the cluster's log to each webhook, in order, from the process that runs
/// the migrations only (so each event is sent once per webhook, not once per router). Each
/// event is retried with a doubling backoff (`retryDelays`), then given up with an error in the
/// log so one dead receiver cannot stall the rest for good. Each webhook's position is saved in
/// the metadata store (as a report named `webhook <url>`), so a new leader goes on where the last
/// one stopped: an event is delivered at least once, and in order.
public final class WebhookDispatcher: Sendable {
    let targets: [WebhookTarget]
    let events: ClusterEvents
    let metadata: any MetadataStore
    let isLeader: @Sendable () -> Bool
    let logger: Logger
    let retryDelays: [Duration]
    let requestTimeout: Duration
    let pollEvery: Duration

    public init(
        targets: [WebhookTarget], router: ShardRouter, metadata: any MetadataStore, isLeader: @escaping @Sendable () -> Bool,
        logger: Logger,
        retryDelays: [Duration] = [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8)],
        requestTimeout: Duration = .seconds(5), pollEvery: Duration = .milliseconds(500)
    ) {
        self.targets = targets
        self.events = router.events
        self.metadata = metadata
        self.isLeader = isLeader
        self.logger = logger
        self.retryDelays = retryDelays
        self.requestTimeout = requestTimeout
        self.pollEvery = pollEvery
    }

    /// The report name a webhook's position is saved under.
    package static func cursorName(_ target: WebhookTarget) -> String { "webhook \(target)" }

    /// Delivers until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for target in targets { group.addTask { await self.deliver(to: target) } }
        }
    }

    private func deliver(to target: WebhookTarget) async {
        var position: UInt64?
        while !Task.isCancelled {
            guard isLeader() else {
                // Another process may deliver meanwhile: read its position again when leading.
                position = nil
                try? await Task.sleep(for: pollEvery)
                continue
            }
            do {
                let from: UInt64
                if let position { from = position } else { from = try await start(target) }
                position = from
                let batch = try await events.read(after: from, limit: 100)
                for stored in batch {
                    guard isLeader(), !Task.isCancelled else { break }
                    await post(stored, to: target)
                    position = stored.position
                    try await saveCursor(target, stored.position)
                }
                if batch.isEmpty { try await Task.sleep(for: pollEvery) }
            } catch {
                logger.warning("webhook delivery paused", metadata: ["webhook": "\(target)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Where delivery resumes: the saved position, else the log's end (a webhook added now
    /// hears what happens from now on).
    private func start(_ target: WebhookTarget) async throws -> UInt64 {
        let name = Self.cursorName(target)
        if let saved = try await metadata.reports().first(where: { $0.router == name }),
            let position = UInt64(saved.report.trimmingCharacters(in: .whitespaces))
        {
            return position
        }
        let last = try await events.bounds().last
        try await saveCursor(target, last)
        return last
    }

    private func saveCursor(_ target: WebhookTarget, _ position: UInt64) async throws {
        try await metadata.saveReport(router: Self.cursorName(target), report: String(position))
    }

    /// Sends one event until a 2xx answers or the retries run out.
    private func post(_ stored: StoredEvent, to target: WebhookTarget) async {
        let body: [UInt8]
        do {
            body = Array(try API.encode(API.ClusterEvent(stored)))
        } catch {
            logger.error("could not encode an event", metadata: ["position": "\(stored.position)", "error": "\(error)"])
            return
        }
        let headers = [
            ("Content-Type", "application/json"), ("Reshard-Event-Id", String(stored.position)),
            ("Reshard-Event", stored.event.kind.rawValue),
        ]
        for (attempt, delay) in ([Duration.zero] + retryDelays).enumerated() {
            if delay > .zero { try? await Task.sleep(for: delay) }
            guard !Task.isCancelled else { return }
            var outcome = ""
            do {
                let connection = try await HTTPConnection.connect(host: target.host, port: target.port, timeout: requestTimeout)
                let response = try await connection.request("POST", target.path, headers: headers, body: body, timeout: requestTimeout)
                await connection.close()
                if (200..<300).contains(response.status) { return }
                outcome = "answered \(response.status)"
            } catch {
                outcome = "\(error)"
            }
            logger.info(
                "webhook delivery failed; retrying",
                metadata: ["webhook": "\(target)", "position": "\(stored.position)", "attempt": "\(attempt + 1)", "outcome": "\(outcome)"])
        }
        logger.error(
            "webhook gave up on an event after every retry", metadata: ["webhook": "\(target)", "position": "\(stored.position)"])
    }
}
