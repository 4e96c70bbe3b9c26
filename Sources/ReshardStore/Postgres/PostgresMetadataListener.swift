import Foundation
import Logging
import PostgresNIO
import ReshardCore
import Synchronization

/// Hears `NOTIFY` on the metadata channel over one connection of its own (a pooled connection
/// would be handed to other queries between uses and miss notifications) and passes each change
/// to the store's watchers. When the connection is lost it reconnects with a bounded backoff and,
/// once listening again, tells watchers of every kind, since anything may have changed meanwhile.
///
/// Buffers stay bounded: PostgresNIO's notification stream is drained as fast as notifications
/// arrive, into `MetadataWatchers`, which keeps at most one round of kinds per watcher.
final class PostgresMetadataListener: Sendable {
    private enum State {
        case idle
        case running(Task<Void, Never>)
        case stopped
    }

    private let endpoint: PostgresEndpoint
    private let watchers: MetadataWatchers
    private let logger: Logger
    private let state = Mutex<State>(.idle)

    /// First wait before reconnecting; it doubles up to `longestBackoff`.
    static let firstBackoff = Duration.milliseconds(100)
    static let longestBackoff = Duration.seconds(5)
    /// How often a quiet connection is checked: a connection lost without a TCP reset would
    /// otherwise leave the listener waiting for notifications that never come.
    static let heartbeat = Duration.seconds(5)
    /// The listener's session name in `pg_stat_activity`.
    static let application = "reshard-metadata-listener"

    init(endpoint: PostgresEndpoint, watchers: MetadataWatchers, logger: Logger) {
        self.endpoint = endpoint
        self.watchers = watchers
        self.logger = logger
    }

    /// Starts listening, unless already started or stopped.
    func start() {
        state.withLock { state in
            guard case .idle = state else { return }
            state = .running(Task { await self.run() })
        }
    }

    /// Stops listening for good and waits for the connection to close.
    func stop() async {
        let task = state.withLock { state -> Task<Void, Never>? in
            defer { state = .stopped }
            if case .running(let task) = state { return task }
            return nil
        }
        task?.cancel()
        await task?.value
    }

    private func run() async {
        var backoff = Self.firstBackoff
        var reachable = true
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                let connection = try await PostgresSession.connect(to: endpoint, as: Self.application, logger: logger)
                if !reachable { logger.info("metadata notifications from \(endpoint) resumed") }
                reachable = true
                await listen(on: connection)
                try? await connection.close()
            } catch {
                if reachable, !Task.isCancelled {
                    logger.warning("metadata notifications from \(endpoint) stopped, reconnecting: \(PostgresSession.reason(error))")
                }
                reachable = false
            }
            // A session that lasted a while was healthy: its loss starts the backoff afresh. One
            // dropped as soon as it opened keeps doubling the wait.
            if ContinuousClock.now - started > Self.longestBackoff { backoff = Self.firstBackoff }
            do {
                try await Task.sleep(for: backoff)
            } catch {
                return
            }
            backoff = min(backoff * 2, Self.longestBackoff)
        }
    }

    /// Listens until the connection is lost or the task is cancelled.
    private func listen(on connection: PostgresConnection) async {
        let (watchers, logger) = (self.watchers, self.logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await PostgresSession.guarded(connection, abandonOnCancel: true) {
                        try await connection.listen(on: PostgresMetadataStore.channel) { notifications in
                            // LISTEN is in place: whatever changed before it could not be heard.
                            for change in MetadataChange.allCases { watchers.yield(change) }
                            for try await notification in notifications {
                                if let change = MetadataChange(rawValue: notification.payload) {
                                    watchers.yield(change)
                                } else {
                                    // A kind from a newer release: re-reading everything is always safe.
                                    for change in MetadataChange.allCases { watchers.yield(change) }
                                }
                            }
                        }
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: Self.heartbeat)
                        guard await PostgresSession.isAlive(connection, within: Self.heartbeat, logger: logger) else {
                            throw StoreError.backend("metadata notification connection stopped answering")
                        }
                    }
                }
                // Whichever ends first (the listen when the connection drops, the heartbeat when
                // it stops answering) ends the session.
                _ = try await group.next()
                group.cancelAll()
            }
        } catch {
            if !Task.isCancelled {
                logger.warning("metadata notifications from \(endpoint) interrupted, reconnecting: \(PostgresSession.reason(error))")
            }
        }
    }
}
