import ReshardCore
import Synchronization

/// Runs a set of tasks as if side by side, but one at a time: a task gives way only where it
/// calls `SeededScheduler.yield()` (a simulation's stores do before every operation), and which
/// waiting task goes next is drawn from a seeded generator. Every interleaving production's
/// concurrency allows at those points can happen, and a seed replays exactly one of them.
public final class SeededScheduler: Sendable {
    /// The scheduler running the current task, and the task's index in its batch.
    @TaskLocal public static var current: (scheduler: SeededScheduler, index: Int)?

    private struct State {
        var random: SeededRandom
        /// Tasks that have not reached their first turn yet: nothing is chosen before all have.
        var unarrived = 0
        /// Tasks running between two yields: 0 or 1.
        var running = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]

        /// The next task to run, when none is running and every task is waiting for a turn.
        mutating func next() -> CheckedContinuation<Void, Never>? {
            guard running == 0, unarrived == 0, !waiting.isEmpty else { return nil }
            let ready = waiting.keys.sorted()
            running += 1
            return waiting.removeValue(forKey: ready[Int(random.next() % UInt64(ready.count))])
        }
    }

    private let state: Mutex<State>

    /// A scheduler drawing its choices from `seed`.
    public init(seed: UInt64) {
        state = Mutex(State(random: SeededRandom(seed: seed)))
    }

    /// Runs `bodies` interleaved at their yields; their results in the order they finished.
    public func run<T: Sendable>(_ bodies: [@Sendable () async -> T]) async -> [T] {
        state.withLock { $0.unarrived = bodies.count }
        return await withTaskGroup(of: T.self) { group in
            for (index, body) in bodies.enumerated() {
                group.addTask {
                    await Self.$current.withValue((self, index)) {
                        await self.park(index, arriving: true)
                        let result = await body()
                        let next = self.state.withLock { state in
                            state.running -= 1
                            return state.next()
                        }
                        next?.resume()
                        return result
                    }
                }
            }
            var results: [T] = []
            for await result in group { results.append(result) }
            return results
        }
    }

    /// Gives way: another task of the batch may run before this one goes on. Outside a batch,
    /// returns at once.
    public static func yield() async {
        guard let (scheduler, index) = current else { return }
        await scheduler.park(index, arriving: false)
    }

    private func park(_ index: Int, arriving: Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let next = state.withLock { state in
                if arriving { state.unarrived -= 1 } else { state.running -= 1 }
                state.waiting[index] = continuation
                return state.next()
            }
            next?.resume()
        }
    }
}
