import Logging
import PostgresNIO
import ReshardCore
import Synchronization

/// Leadership as a session-level advisory lock on a connection of its own.
///
/// The lock lives exactly as long as the session: PostgreSQL releases it when the holder's
/// connection ends, however it ends (the process died, the network failed, the server
/// restarted), and then another process's `tryAcquire()` succeeds. So the holder must notice
/// the loss as soon as the server may have noticed it: a watchdog runs `SELECT 1` on the
/// connection every `watchdogInterval`, and the hold ends at once when the connection closes,
/// a check fails, or a check goes unanswered for `checkTimeout`. The connection is never a
/// pooled one: a pool would hand the session, lock and all, to other queries.
final class PostgresLeadership: LeadershipLease {
    private struct Hold {
        let epoch: UInt64
        let connection: PostgresConnection
        var watchdog: Task<Void, Never>?
    }

    private let name: String
    private let key: Int64
    private let endpoint: PostgresEndpoint
    private let registry: PostgresLeaseRegistry
    private let logger: Logger
    /// Orders `tryAcquire` and `release`, which await the server between their steps.
    private let serial = AsyncSerialLock()
    /// The hold, if any, and the epoch of the last one: a watchdog or close callback of an
    /// earlier hold must not end a later one.
    private let state = Mutex<(epoch: UInt64, hold: Hold?)>((0, nil))

    static let watchdogInterval = Duration.milliseconds(500)
    static let checkTimeout = Duration.seconds(2)

    init(name: String, endpoint: PostgresEndpoint, registry: PostgresLeaseRegistry, logger: Logger) {
        self.name = name
        self.key = Self.key(for: name)
        self.endpoint = endpoint
        self.registry = registry
        self.logger = logger
    }

    /// The advisory lock key of a lease name: stable across processes and releases, so every
    /// process contends for the same lock.
    static func key(for name: String) -> Int64 { Int64(bitPattern: XXHash64.hash("reshard-leader:" + name)) }

    var isHeld: Bool { state.withLock { $0.hold != nil } }

    func tryAcquire() async throws -> Bool {
        try await serial.withLock {
            if isHeld { return true }
            guard registry.isOpen else { throw StoreError.backend("leadership \(name): the metadata store is closed") }
            let connection = try await PostgresSession.connect(to: endpoint, as: "reshard-leader:" + name, logger: logger)
            let acquired: Bool
            do {
                let (key, logger) = (key, logger)
                acquired = try await PostgresSession.guarded(connection, timeout: Self.checkTimeout, abandonOnCancel: true) {
                    var granted = false
                    for try await value in try await connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger)
                        .decode(Bool.self)
                    {
                        granted = value
                    }
                    return granted
                }
            } catch {
                try? await connection.close()
                throw StoreError.backend("leadership \(name) at \(endpoint): \(PostgresSession.reason(error))")
            }
            guard acquired else {
                try? await connection.close()
                return false
            }
            let epoch = state.withLock { state in
                state.epoch += 1
                state.hold = Hold(epoch: state.epoch, connection: connection)
                return state.epoch
            }
            // Registered after the hold exists, so a store closing from now on finds and ends it;
            // a store that closed meanwhile means giving the lock straight back.
            guard registry.add(self) else {
                await end(epoch)
                throw StoreError.backend("leadership \(name): the metadata store is closed")
            }
            connection.closeFuture.whenComplete { _ in self.lose(epoch, because: "its connection closed") }
            let watchdog = Task { await self.watch(connection, epoch: epoch) }
            let attached = state.withLock { state in
                guard state.hold?.epoch == epoch else { return false }
                state.hold?.watchdog = watchdog
                return true
            }
            // Not attached: the connection closed already and `lose` ended the hold.
            guard attached else {
                watchdog.cancel()
                return false
            }
            logger.info("leadership \(name) acquired at \(endpoint)")
            return true
        }
    }

    func release() async {
        _ = try? await serial.withLock {
            guard let epoch = state.withLock({ $0.hold?.epoch }) else { return }
            await end(epoch)
            logger.info("leadership \(name) released")
        }
    }

    /// Checks the connection until the hold ends.
    private func watch(_ connection: PostgresConnection, epoch: UInt64) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: Self.watchdogInterval)
            } catch {
                return
            }
            if await !PostgresSession.isAlive(connection, within: Self.checkTimeout, logger: logger) {
                lose(epoch, because: "its connection stopped answering")
                return
            }
        }
    }

    /// Ends hold `epoch` now, from any thread (a close callback runs on the event loop): the
    /// holder stops leading before anything else happens.
    private func lose(_ epoch: UInt64, because reason: String) {
        guard let hold = take(epoch) else { return }
        logger.warning("leadership \(name) lost: \(reason)")
        hold.watchdog?.cancel()
        registry.remove(self)
        // Not awaited: this runs on the event loop too, and nothing waits for the close.
        let closing: EventLoopFuture<Void> = hold.connection.close()
        closing.whenComplete { _ in }
    }

    /// Ends hold `epoch`: `isHeld` turns false first, then the lock is given back (best effort:
    /// closing the session gives it back anyway) and the connection closed.
    private func end(_ epoch: UInt64) async {
        guard let hold = take(epoch) else { return }
        hold.watchdog?.cancel()
        registry.remove(self)
        let (connection, key, logger) = (hold.connection, key, logger)
        _ = try? await PostgresSession.guarded(connection, timeout: Self.checkTimeout, abandonOnCancel: true) {
            try await connection.query("SELECT pg_advisory_unlock(\(key))", logger: logger).collect().count
        }
        try? await connection.close()
    }

    private func take(_ epoch: UInt64) -> Hold? {
        state.withLock { state in
            guard let hold = state.hold, hold.epoch == epoch else { return nil }
            state.hold = nil
            return hold
        }
    }
}

/// The leases of one store that hold a lock now, so closing the store gives them all up.
final class PostgresLeaseRegistry: Sendable {
    private let state = Mutex<(open: Bool, holders: [ObjectIdentifier: PostgresLeadership])>((true, [:]))

    /// Whether the store is still open.
    var isOpen: Bool { state.withLock { $0.open } }

    /// Records a holder; false once the store is closed.
    func add(_ lease: PostgresLeadership) -> Bool {
        state.withLock { state in
            guard state.open else { return false }
            state.holders[ObjectIdentifier(lease)] = lease
            return true
        }
    }

    func remove(_ lease: PostgresLeadership) {
        _ = state.withLock { $0.holders.removeValue(forKey: ObjectIdentifier(lease)) }
    }

    /// Refuses holders from now on and returns the current ones, for the store to release.
    func close() -> [PostgresLeadership] {
        state.withLock { state in
            state.open = false
            return Array(state.holders.values)
        }
    }
}

/// Connections outside the pool, for sessions that must stay one session: LISTEN and session
/// advisory locks.
enum PostgresSession {
    private static let nextID = Atomic<Int>(0)

    /// Opens a connection to `endpoint`, configured like the pool's. `application` names the
    /// session in `pg_stat_activity`, so an operator can tell what holds it.
    static func connect(to endpoint: PostgresEndpoint, as application: String, logger: Logger) async throws -> PostgresConnection {
        do {
            let tls: PostgresConnection.Configuration.TLS =
                endpoint.requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable
            var configuration = PostgresConnection.Configuration(
                host: endpoint.host, port: endpoint.port, username: endpoint.user, password: endpoint.password,
                database: endpoint.database, tls: tls)
            configuration.options.connectTimeout = .seconds(5)
            configuration.options.additionalStartupParameters = [("TimeZone", "UTC"), ("application_name", application)]
            let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
            return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        } catch {
            throw StoreError.backend("cannot connect to \(endpoint): \(reason(error))")
        }
    }

    /// The server's message or the client's error, for wrapping in a `StoreError` of our own:
    /// without the preamble of a wrapped `StoreError`, which would otherwise appear twice.
    static func reason(_ error: any Error) -> String {
        let text = PostgresShardStore.message(error)
        let preamble = StoreError.backend("").description
        return text.hasPrefix(preamble) ? String(text.dropFirst(preamble.count)) : text
    }

    /// Whether `connection` answers `SELECT 1` within `timeout`; one that does not is closed.
    static func isAlive(_ connection: PostgresConnection, within timeout: Duration, logger: Logger) async -> Bool {
        do {
            _ = try await guarded(connection, timeout: timeout, abandonOnCancel: true) {
                try await connection.query("SELECT 1", logger: logger).collect().count
            }
            return true
        } catch {
            return false
        }
    }

    /// Runs `operation`, which queries `connection`, and returns its result, or throws as soon
    /// as the connection is closed, `timeout` passes (then it closes the connection: a silent
    /// server must not hold the caller), or, with `abandonOnCancel`, the task is cancelled.
    ///
    /// Why: PostgresNIO 1.33 never completes a query written to a connection that has just
    /// closed (its fix, vapor/postgres-nio#487, was reverted by #501), so awaiting one can hang
    /// for good when a server restarts or ends a session. An abandoned operation stays
    /// suspended: a small leak per lost connection, for a caller that always gets an answer.
    /// For dedicated connections (leadership, notifications, liveness checks); pooled calls get
    /// the same answer from `PostgresCallWatch` without a watch task per query.
    static func guarded<T: Sendable>(
        _ connection: PostgresConnection, timeout: Duration? = nil, abandonOnCancel: Bool = false,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = Outcome<T>()
        Task {
            // Settled first by the watch or a cancellation: the caller gave the connection up
            // mid-query, in a state nobody knows, and may have dropped it. Close it here, or
            // it would be freed unclosed (PostgresNIO asserts against that in debug builds).
            if !outcome.settle(await Result { try await operation() }), !connection.isClosed { try? await connection.close() }
        }
        // Polled rather than a callback on `closeFuture`, whose callbacks would pile up on a
        // long-lived pooled connection, one per query.
        let watch = Task {
            let started = ContinuousClock.now
            while !outcome.isSettled {
                do {
                    try await Task.sleep(for: closedPoll)
                } catch {
                    return
                }
                if connection.isClosed {
                    outcome.settle(.failure(SessionLost(reason: "the connection closed")))
                } else if let timeout, ContinuousClock.now - started >= timeout {
                    outcome.settle(.failure(SessionLost(reason: "no answer within \(timeout)")))
                    try? await connection.close()
                }
            }
        }
        defer { watch.cancel() }
        if abandonOnCancel {
            return try await withTaskCancellationHandler {
                try await outcome.value()
            } onCancel: {
                outcome.settle(.failure(CancellationError()))
            }
        }
        return try await outcome.value()
    }

    /// How soon `guarded` notices a closed connection.
    static let closedPoll = Duration.milliseconds(100)

    /// Why `guarded` gave up on a connection; callers add which database it was.
    struct SessionLost: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }
}

/// The first of several results (an operation's, a closed connection, a timeout), for one waiter.
final class Outcome<T: Sendable>: Sendable {
    private let state = Mutex<(result: Result<T, any Error>?, waiter: CheckedContinuation<T, any Error>?)>((nil, nil))

    var isSettled: Bool { state.withLock { $0.result != nil } }

    /// Records `result` unless one is recorded already, and wakes the waiter; whether it was
    /// the first.
    @discardableResult
    func settle(_ result: Result<T, any Error>) -> Bool {
        let (first, waiter) = state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?) in
            guard state.result == nil else { return (false, nil) }
            state.result = result
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume(with: result)
        return first
    }

    /// The first result, once there is one.
    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

extension Result where Failure == any Error {
    /// The result of `body`, thrown error included.
    init(_ body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
