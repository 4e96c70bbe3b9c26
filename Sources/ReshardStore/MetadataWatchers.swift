import Synchronization

/// Fans metadata changes out to every watcher of one store handle. Each watcher's buffer keeps
/// only the newest change of each kind: a slow watcher re-reads once, it does not queue history.
/// `package`: the test kit's in-memory metadata store announces its changes the same way.
package final class MetadataWatchers: Sendable {
    private let state = Mutex<(next: Int, continuations: [Int: AsyncStream<MetadataChange>.Continuation], finished: Bool)>(
        (0, [:], false))

    package init() {}

    package func stream() -> AsyncStream<MetadataChange> {
        let (stream, continuation) = AsyncStream<MetadataChange>.makeStream(
            bufferingPolicy: .bufferingNewest(MetadataChange.allCases.count))
        let id = state.withLock { state -> Int? in
            guard !state.finished else { return nil }
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    package func yield(_ change: MetadataChange) {
        for continuation in state.withLock({ Array($0.continuations.values) }) { continuation.yield(change) }
    }

    package func finish() {
        let all = state.withLock { state in
            state.finished = true
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in all { continuation.finish() }
    }
}

/// Leadership within one process: the embedded default has one migrator per metadata handle,
/// so the lease only keeps two managers of the same handle from both leading.
package final class ProcessLeadership: LeadershipLease {
    private let name: String
    private let holders: ProcessLeaders
    private let held = Mutex(false)

    package init(name: String, holders: ProcessLeaders) {
        self.name = name
        self.holders = holders
    }

    package func tryAcquire() async throws -> Bool {
        if isHeld { return true }
        guard holders.take(name) else { return false }
        held.withLock { $0 = true }
        return true
    }

    package var isHeld: Bool { held.withLock { $0 } }

    package func release() async {
        let wasHeld = held.withLock { held in
            defer { held = false }
            return held
        }
        if wasHeld { holders.give(name) }
    }
}

/// The lease names held through one metadata handle.
package final class ProcessLeaders: Sendable {
    private let names = Mutex<Set<String>>([])

    package init() {}

    func take(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
    func give(_ name: String) { _ = names.withLock { $0.remove(name) } }
}
