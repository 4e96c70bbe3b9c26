import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import ServiceLifecycle
import Synchronization

/// Samples the replication slots of every shard on a timer, never per request or per scrape
/// (each sample is a query to every PostgreSQL shard), and shows what each slot retains:
///
/// - `reshard_replication_slot_retained_bytes{shard,slot}`: WAL from the slot's restart point to
///   the server's current position, which the server may not recycle;
/// - `reshard_replication_slot_active{shard,slot}` 1 while a session reads the slot;
/// - `reshard_replication_slot_sample_errors_total{shard}`: samples that failed or timed out
///   (the slot figures then keep their last values).
///
/// A slot that is gone loses its series. A shard that does not answer within `timeout` is left
/// for the next tick, and is not asked again while its abandoned sample is still out, so a hung
/// server cannot pile queries up.
public final class ReplicationSlotSampler: Service, Sendable {
    private struct Slot: Hashable {
        var shard: ShardID
        var name: String
    }

    private struct State {
        var retained: [Slot: Gauge] = [:]
        var active: [Slot: Gauge] = [:]
        var errors: [ShardID: Counter] = [:]
        var outstanding: Set<ShardID> = []
    }

    private struct TimedOut: Error {}

    private let router: ShardRouter
    private let factory: any MetricsFactory
    private let logger: Logger
    private let interval: Duration
    private let timeout: Duration
    private let state = Mutex(State())

    /// A sampler of `router`'s shards every `interval`, giving each shard `timeout` to answer.
    public init(
        router: ShardRouter, factory: any MetricsFactory, logger: Logger, interval: Duration = .seconds(15),
        timeout: Duration = .seconds(5)
    ) {
        self.router = router
        self.factory = factory
        self.logger = logger
        self.interval = interval
        self.timeout = timeout
    }

    /// Samples until the service group shuts down.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.sample()
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// One sample of every shard, side by side.
    public func sample() async {
        let shards = router.registeredShards.compactMap { shard in router.store(shard).map { (shard, $0) } }
        await withTaskGroup(of: Void.self) { group in
            for (shard, store) in shards {
                let due = state.withLock { $0.outstanding.insert(shard).inserted }
                guard due else { continue }
                group.addTask { await self.sample(shard, store) }
            }
        }
    }

    private func sample(_ shard: ShardID, _ store: any ShardStore) async {
        do {
            let slots = try await Self.within(timeout, done: { self.state.withLock { _ = $0.outstanding.remove(shard) } }) {
                try await store.replicationSlots()
            }
            show(slots, of: shard)
        } catch {
            logger.debug("could not sample the replication slots", metadata: ["shard": "\(shard)", "error": "\(error)"])
            let counter = state.withLock { state in
                let counter =
                    state.errors[shard]
                    ?? Counter(
                        label: "reshard_replication_slot_sample_errors_total", dimensions: [("shard", shard.rawValue)], factory: factory)
                state.errors[shard] = counter
                return counter
            }
            counter.increment()
        }
    }

    private func show(_ slots: [ReplicationSlotUsage], of shard: ShardID) {
        state.withLock { state in
            let seen = Set(slots.map { Slot(shard: shard, name: $0.name) })
            for key in state.retained.keys where key.shard == shard && !seen.contains(key) {
                state.retained.removeValue(forKey: key)?.destroy()
                state.active.removeValue(forKey: key)?.destroy()
            }
            for usage in slots {
                let key = Slot(shard: shard, name: usage.name)
                let labels = [("shard", shard.rawValue), ("slot", usage.name)]
                let retained =
                    state.retained[key] ?? Gauge(label: "reshard_replication_slot_retained_bytes", dimensions: labels, factory: factory)
                let active = state.active[key] ?? Gauge(label: "reshard_replication_slot_active", dimensions: labels, factory: factory)
                state.retained[key] = retained
                state.active[key] = active
                retained.record(Double(usage.retainedBytes ?? 0))
                active.record(usage.active ? 1 : 0)
            }
        }
    }

    /// `body`'s result, or `TimedOut` once `timeout` has passed; `done` runs when `body` ends,
    /// however late. The body runs in a task of its own that the caller does not wait for: a
    /// query stuck on a dead connection may not notice cancellation, and the sampler must go on.
    private static func within<T: Sendable>(
        _ timeout: Duration, done: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let handoff = Handoff<T>()
        return try await withCheckedThrowingContinuation { continuation in
            handoff.waiting.withLock { $0 = continuation }
            let work = Task {
                let result: Result<T, any Error>
                do {
                    result = .success(try await body())
                } catch {
                    result = .failure(error)
                }
                done()
                handoff.waiting.withLock { $0.take() }?.resume(with: result)
            }
            Task {
                try? await Task.sleep(for: timeout)
                guard let late = handoff.waiting.withLock({ $0.take() }) else { return }
                work.cancel()
                late.resume(throwing: TimedOut())
            }
        }
    }
}

/// The caller of `within`, resumed once: by the body's result or by the timeout, whichever comes first.
private final class Handoff<T: Sendable>: Sendable {
    let waiting = Mutex<CheckedContinuation<T, any Error>?>(nil)
}
