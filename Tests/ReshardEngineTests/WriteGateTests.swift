import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardEngine
import ReshardStore
import Synchronization
import Testing

@Suite struct WriteGateTests {
    @Test func heldWritesWaitForTheReleaseAndOthersPass() async throws {
        let gate = WriteGate()
        let hash = KeyHash.of("a")
        gate.hold([HashRange(start: hash, last: hash)])
        #expect(await gate.admit(hash &+ 1, timeout: .seconds(5)))
        let waiting = Task { await gate.admit(hash, timeout: .seconds(30)) }
        // Wait (bounded) until the write is parked, rather than guessing with a sleep.
        for _ in 0..<1_000 where gate.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(gate.waiting == 1)
        gate.release()
        // Taken at once, as the migrator does: the pause must be recorded before the writer runs again.
        let pauses = gate.takePauses()
        #expect(await waiting.value)
        #expect(pauses.count == 1)
        #expect(pauses.maxMillis > 0)
        #expect(!gate.isHolding)
    }

    @Test func aHoldPastTheBoundIsARetryable503NotADrop() async throws {
        let fixture = try await RouterFixture.make(shards: 2)
        defer { fixture.remove() }
        let router = try await ShardRouter(
            metadata: fixture.metadata, openStore: fixture.folder.opener, metricsFactory: NOOPMetricsHandler.instance,
            logger: Logger(label: "test"), holdTimeout: .milliseconds(30))
        _ = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        router.gate.hold([.full])
        do {
            _ = try await router.put(table: "kv", pk: "a", body: Array("{}".utf8))
            Issue.record("a held write must not succeed while held")
        } catch let error as RouterError {
            #expect(error.code == "range_moving")
            #expect(error.retryAfterSeconds == 1)
        }
        // Reads are never held.
        await #expect(throws: RouterError.self) { try await router.get(table: "kv", pk: "a", shardKey: nil) }
        router.gate.release()
        #expect(try await router.put(table: "kv", pk: "a", body: Array("{}".utf8)).pk == "a")
    }

    @Test func anObserverSeesEveryHeldWritesWaitReleasedOrTimedOut() async throws {
        let gate = WriteGate()
        let seen = Mutex<[Duration]>([])
        gate.observeWaits { wait in seen.withLock { $0.append(wait) } }
        let hash = KeyHash.of("a")
        gate.hold([HashRange(start: hash, last: hash)])
        let released = (0..<3).map { _ in Task { await gate.admit(hash, timeout: .seconds(30)) } }
        for _ in 0..<1_000 where gate.waiting < 3 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(gate.waiting == 3)
        gate.release()
        for task in released { #expect(await task.value) }
        #expect(seen.withLock { $0.count } == 3)
        // A write that gives up is held too, and seen once.
        gate.hold([HashRange(start: hash, last: hash)])
        #expect(!(await gate.admit(hash, timeout: .milliseconds(20))))
        gate.release()
        #expect(seen.withLock { $0.count } == 4)
        #expect(seen.withLock { $0.allSatisfy { $0 > .zero } })
        // Not held, not seen; and a removed observer sees nothing.
        #expect(await gate.admit(hash, timeout: .seconds(1)))
        gate.observeWaits(nil)
        gate.hold([HashRange(start: hash, last: hash)])
        let late = Task { await gate.admit(hash, timeout: .seconds(30)) }
        for _ in 0..<1_000 where gate.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        gate.release()
        #expect(await late.value)
        #expect(seen.withLock { $0.count } == 4)
    }
}
