import Dispatch
import Foundation
import Synchronization

/// A task executor that is one thread: every job of the tasks that prefer it (and of the default
/// actors they call) runs there, one after another. A simulated run is one logical process whose
/// tasks only ever wait on each other, so on the shared pool each hop between them wakes another
/// worker thread (a futex call and a context switch, most of a hop's cost); on its own lane a hop
/// is a queue append. The soak runs one lane per core.
public final class LaneExecutor: TaskExecutor, Sendable {
    private let jobs = Mutex(Jobs())
    /// Counts queued jobs (and the stop request): the thread sleeps on it only when there is none,
    /// and a signal with no sleeper costs no system call.
    private let ready = DispatchSemaphore(value: 0)

    private struct Jobs: ~Copyable {
        var queue: [UnownedJob] = []
        var head = 0
        var stopping = false

        mutating func pop() -> UnownedJob? {
            guard head < queue.count else { return nil }
            let job = queue[head]
            head += 1
            // Compact now and then so the queue does not grow with the run.
            if head >= 1_024, head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    /// A lane with its thread started; `stop()` ends it.
    public init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.queue.append(job) }
        ready.signal()
    }

    /// Lets the thread finish what is queued and exit.
    public func stop() {
        jobs.withLock { $0.stopping = true }
        ready.signal()
    }

    private func loop() {
        while true {
            ready.wait()
            let next: UnownedJob? = jobs.withLock { jobs in
                jobs.pop()
            }
            if let next {
                next.runSynchronously(on: asUnownedTaskExecutor())
            } else if jobs.withLock({ $0.stopping }) {
                return
            }
        }
    }
}
