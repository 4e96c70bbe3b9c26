import PostgresNIO
import Synchronization

/// Bounds every pooled call's wait for a connection, and fails a call whose connection closes
/// under it, from one ticker for the whole process.
///
/// Why one ticker: each call used to race its body against two sleeping tasks (the lease
/// timeout and a 100 ms poll of the connection), four tasks and two timers per query; with
/// prepared statements PostgreSQL's share of a read fell enough that those timers were the
/// client's largest cost (dispatch's timer heap, task creation, malloc). Here a call costs two
/// tasks (one holds the lease, one runs the body) and a registration, and the ticker runs only
/// while calls are in flight.
///
/// Why the closed-connection check at all: PostgresNIO 1.33 never completes a query written to
/// a connection that has just closed (see `PostgresSession.guarded`). Such a call is answered
/// with an error within a tick and its lease is handed back (the pool drops the closed
/// connection); the task running its body stays suspended, a small leak per lost connection.
final class PostgresCallWatch: Sendable {
    static let shared = PostgresCallWatch()

    /// How often calls in flight are checked: the lateness of a lease timeout and of noticing
    /// a closed connection.
    static let tick = Duration.milliseconds(100)

    private struct Call {
        let started: ContinuousClock.Instant
        let leaseTimeout: Duration
        let endpoint: String
        /// Answers the caller with an error, if nothing answered it yet.
        let fail: @Sendable (any Error) -> Void
        var connection: PostgresConnection?
        /// Ends the leased part of the call with an error, once its connection is lost.
        var lost: (@Sendable (any Error) -> Void)?
        var task: Task<Void, Never>?
    }

    private struct State {
        var next: UInt64 = 0
        var calls: [UInt64: Call] = [:]
        var ticking = false
    }

    private let state = Mutex(State())

    /// Registers a call waiting for a lease; `fail` answers its caller.
    func register(leaseTimeout: Duration, endpoint: String, fail: @escaping @Sendable (any Error) -> Void) -> UInt64 {
        let (id, startTicker) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            state.calls[state.next] = Call(started: .now, leaseTimeout: leaseTimeout, endpoint: endpoint, fail: fail)
            defer { state.ticking = true }
            return (state.next, !state.ticking)
        }
        if startTicker { Task { await self.runTicker() } }
        return id
    }

    /// The task running call `id`, cancelled if the call is given up before its lease.
    func attach(_ id: UInt64, task: Task<Void, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            guard state.calls[id] != nil else { return true }
            state.calls[id]?.task = task
            return false
        }
        if cancelNow { task.cancel() }
    }

    /// Call `id` got `connection`; false when the call was given up meanwhile (its caller was
    /// answered): then the body must not run. `lost` ends the call if the connection closes.
    func leased(_ id: UInt64, _ connection: PostgresConnection, lost: @escaping @Sendable (any Error) -> Void) -> Bool {
        state.withLock { state in
            guard state.calls[id] != nil else { return false }
            state.calls[id]?.connection = connection
            state.calls[id]?.lost = lost
            return true
        }
    }

    /// Call `id` is over.
    func finish(_ id: UInt64) {
        _ = state.withLock { $0.calls.removeValue(forKey: id) }
    }

    /// The caller of `id` was cancelled: a call still waiting for its lease is given up; one
    /// that holds a connection runs to completion (cutting a query off could leave a
    /// transaction open).
    func cancel(_ id: UInt64) {
        let call = state.withLock { state -> Call? in
            guard let call = state.calls[id], call.connection == nil else { return nil }
            state.calls[id] = nil
            return call
        }
        guard let call else { return }
        call.fail(CancellationError())
        call.task?.cancel()
    }

    private func runTicker() async {
        while true {
            try? await Task.sleep(for: Self.tick)
            let now = ContinuousClock.now
            let (expired, lost, stop) = state.withLock { state -> ([Call], [Call], Bool) in
                var expired: [Call] = []
                var lost: [Call] = []
                for (id, call) in state.calls {
                    if let connection = call.connection {
                        guard connection.isClosed else { continue }
                        lost.append(call)
                    } else {
                        guard now - call.started >= call.leaseTimeout else { continue }
                        expired.append(call)
                    }
                    state.calls[id] = nil
                }
                if state.calls.isEmpty { state.ticking = false }
                return (expired, lost, state.calls.isEmpty)
            }
            // The caller is answered before its task is cancelled: the cancelled lease fails
            // too (PostgresNIO's requestCancelled), and the first answer is the one it gets.
            for call in expired {
                call.fail(StoreError.backend("no connection to \(call.endpoint) within \(call.leaseTimeout)"))
                call.task?.cancel()
            }
            for call in lost { call.lost?(PostgresSession.SessionLost(reason: "the connection closed")) }
            if stop { return }
        }
    }
}
