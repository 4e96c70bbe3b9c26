import ReshardCore
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

/// Migration logs (a dual-writing router's retry queue, the record of client writes to replay)
/// behave alike on every metadata backend.
@Suite struct MigrationLogConformanceTests {
    @Test func aLogIsNamedAndOrderedByItsMigrationThenItsKind() {
        #expect(migrationLog("m1", .replay).rawValue == "m1.replay")
        #expect("\(migrationLog("m_2", .retry))" == "m_2.retry")
        let sorted = [migrationLog("m10", .retry), migrationLog("m1", .retry), migrationLog("m1", .replay), migrationLog("m0", .retry)]
            .sorted()
        #expect(sorted.map(\.rawValue) == ["m0.retry", "m1.replay", "m1.retry", "m10.retry"])
        #expect(sorted.map(\.rawValue) == sorted.map(\.rawValue).sorted(), "the stored keys sort the same way")
    }

    @Test(arguments: ShardBackend.metadataCases)
    func appendsAreReadBackInOrderAtConsecutivePositions(backend: ShardBackend) async throws {
        // Effects spelled out where every `try` is inside `#expect`: the compiler does not infer
        // them from a macro's arguments.
        try await backend.withOpenLogs { meta async throws in
            let retry = migrationLog("m1")
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 0))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == [])
            #expect(try await meta.appendToLog(retry, ["a", "b", "c"], limit: 100) == 3)
            #expect(try await meta.appendToLog(retry, ["d"], limit: 100) == 4)
            #expect(try await meta.appendToLog(retry, ["e", "f"], limit: 100) == 6)
            #expect(try await meta.readLog(retry, after: 0, limit: 100) == entries(1, ["a", "b", "c", "d", "e", "f"]))
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 6, last: 6))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func readsStartAfterThePositionGivenAndStopAtTheirLimit(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta async throws in
            let replay = migrationLog("m1", .replay)
            let bodies = (1...10).map { "w\($0)" }
            #expect(try await meta.appendToLog(replay, bodies, limit: 100) == 10)
            #expect(try await meta.readLog(replay, after: 3, limit: 4) == entries(4, ["w4", "w5", "w6", "w7"]))
            #expect(try await meta.readLog(replay, after: 8, limit: 4) == entries(9, ["w9", "w10"]))
            #expect(try await meta.readLog(replay, after: 10, limit: 4) == [])
            #expect(try await meta.readLog(replay, after: 11, limit: 4) == [])
            #expect(try await meta.readLog(replay, after: .max, limit: 4) == [], "no position is past 2^63, and none traps")
            // A limit below 1 reads one entry: a reader always makes progress.
            #expect(try await meta.readLog(replay, after: 0, limit: 0) == entries(1, ["w1"]))
            #expect(try await meta.readLog(replay, after: 5, limit: -3) == entries(6, ["w6"]))
            #expect(try await meta.readLog(replay, after: 0, limit: .max) == entries(1, bodies))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func readsAreCappedAtTheMostOneReadReturns(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            let replay = migrationLog("m1", .replay)
            let most = MigrationLogID.readLimits.upperBound
            let bodies = (1...most + 5).map { "w\($0)" }
            #expect(try await meta.appendToLog(replay, bodies, limit: .max) == UInt64(most + 5))
            let page = try await meta.readLog(replay, after: 0, limit: most + 5)
            #expect(page.count == most)
            #expect(page.last == LogEntry(position: UInt64(most), body: "w\(most)"))
            #expect(try await meta.readLog(replay, after: UInt64(most), limit: .max) == entries(most + 1, Array(bodies[most...])))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func trimmedPositionsAreNeverReused(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            let retry = migrationLog("m1")
            #expect(try await meta.appendToLog(retry, ["a", "b", "c", "d", "e"], limit: 10) == 5)
            try await meta.trimLog(retry, through: 3)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 2, last: 5))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(4, ["d", "e"]))
            try await meta.trimLog(retry, through: 2)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 2, last: 5), "trimming what is gone changes nothing")

            try await meta.trimLog(retry, through: 5)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 5), "an emptied log keeps its last position")
            #expect(try await meta.appendToLog(retry, ["f"], limit: 10) == 6)
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(6, ["f"]))

            try await meta.trimLog(retry, through: .max)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 6))
            #expect(try await meta.appendToLog(retry, ["g", "h"], limit: 10) == 8)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 2, last: 8))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(7, ["g", "h"]))

            let never = migrationLog("m2")
            try await meta.trimLog(never, through: 4)
            #expect(try await meta.logStatus(never) == LogStatus(entries: 0, last: 0), "trimming a log never appended to")
            #expect(try await meta.appendToLog(never, ["x"], limit: 10) == 1)
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aFullLogRefusesAppendsWholeUntilItIsTrimmed(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            let retry = migrationLog("m1")
            #expect(try await meta.appendToLog(retry, ["a", "b"], limit: 3) == 2)
            #expect(try await meta.appendToLog(retry, ["c", "d"], limit: 3) == nil, "the log would hold 4")
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 2, last: 2))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(1, ["a", "b"]))
            #expect(try await meta.appendToLog(retry, ["c"], limit: 3) == 3, "exactly full is allowed")
            #expect(try await meta.appendToLog(retry, ["d"], limit: 3) == nil)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 3, last: 3))

            try await meta.trimLog(retry, through: 2)
            #expect(try await meta.appendToLog(retry, ["d", "e"], limit: 3) == 5)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 3, last: 5))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(3, ["c", "d", "e"]))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aLimitBelowOneOrUnderTheBatchRefusesEvenAnEmptyLog(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta async throws in
            let retry = migrationLog("m1")
            #expect(try await meta.appendToLog(retry, ["a"], limit: 0) == nil)
            #expect(try await meta.appendToLog(retry, ["a"], limit: -1) == nil)
            #expect(try await meta.appendToLog(retry, [], limit: 0) == nil, "a limit below 1 never appends")
            #expect(try await meta.appendToLog(retry, ["a", "b", "c"], limit: 2) == nil)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 0))
            #expect(try await meta.appendToLog(retry, ["a", "b"], limit: 2) == 2, "refusals used no position")
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func anEmptyAppendWritesNothingAndAnswersTheLastPosition(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            let retry = migrationLog("m1")
            #expect(try await meta.appendToLog(retry, [], limit: 5) == 0)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 0))
            #expect(try await meta.appendToLog(retry, ["a", "b", "c"], limit: 5) == 3)
            #expect(try await meta.appendToLog(retry, [], limit: 5) == 3)
            #expect(try await meta.appendToLog(retry, [], limit: 3) == 3, "a full log still holds no more than its limit")
            #expect(try await meta.appendToLog(retry, [], limit: 2) == nil, "a log already over a lower limit")
            try await meta.trimLog(retry, through: 3)
            #expect(try await meta.appendToLog(retry, [], limit: 5) == 3)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 3))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == [])
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func logsOfOtherMigrationsAndKindsAreIndependent(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            let (retry, replay, other) = (migrationLog("m1"), migrationLog("m1", .replay), migrationLog("m10"))
            #expect(try await meta.appendToLog(retry, ["r1", "r2"], limit: 2) == 2)
            #expect(try await meta.appendToLog(replay, ["p1"], limit: 2) == 1, "another kind has positions of its own")
            #expect(try await meta.appendToLog(other, ["o1", "o2"], limit: 2) == 2, "and another migration its own bound")
            #expect(try await meta.appendToLog(retry, ["r3"], limit: 2) == nil)
            try await meta.trimLog(replay, through: 1)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 2, last: 2))
            #expect(try await meta.logStatus(replay) == LogStatus(entries: 0, last: 1))
            #expect(try await meta.logStatus(other) == LogStatus(entries: 2, last: 2))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(1, ["r1", "r2"]))
            #expect(try await meta.readLog(other, after: 0, limit: 10) == entries(1, ["o1", "o2"]))
            #expect(try await meta.logStatus(migrationLog("m")) == LogStatus(entries: 0, last: 0))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func droppingLogsRemovesOnlyThatMigrations(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            // Ids a prefix match or a LIKE pattern (`_` is any character) would confuse with `m_1`.
            let dropped = [migrationLog("m_1"), migrationLog("m_1", .replay)]
            let kept = [migrationLog("m_10"), migrationLog("mx1"), migrationLog("m_1x", .replay), migrationLog("m", .retry)]
            for (index, id) in (dropped + kept).enumerated() {
                #expect(try await meta.appendToLog(id, ["\(id)-a", "\(id)-b"], limit: 10) == 2, "\(index)")
            }
            try await meta.trimLog(dropped[0], through: 1)
            try await meta.dropLogs(of: ChangeStreamID("m_1")!)
            for id in dropped {
                #expect(try await meta.logStatus(id) == LogStatus(entries: 0, last: 0), "\(id)")
                #expect(try await meta.readLog(id, after: 0, limit: 10) == [], "\(id)")
            }
            for id in kept {
                #expect(try await meta.logStatus(id) == LogStatus(entries: 2, last: 2), "\(id)")
                #expect(try await meta.readLog(id, after: 0, limit: 10) == entries(1, ["\(id)-a", "\(id)-b"]), "\(id)")
            }
            #expect(try await meta.appendToLog(dropped[0], ["late"], limit: 10) == nil, "a dropped log takes no appends")
            #expect(try await meta.logStatus(dropped[0]) == LogStatus(entries: 0, last: 0))
            try await meta.openLogs(of: ChangeStreamID("m_1")!)
            #expect(try await meta.appendToLog(dropped[0], ["again"], limit: 10) == 1, "a log opened again starts over")
            try await meta.dropLogs(of: ChangeStreamID("gone")!)
            try await meta.dropLogs(of: ChangeStreamID("m_1")!)
            try await meta.dropLogs(of: ChangeStreamID("m_1")!)
            #expect(try await meta.logStatus(dropped[0]) == LogStatus(entries: 0, last: 0))
            #expect(try await meta.logStatus(kept[0]) == LogStatus(entries: 2, last: 2))
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func bodiesComeBackByteForByte(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta in
            let replay = migrationLog("m1", .replay)
            let bodies = [
                "", " ", "plain", "h\u{E9}llo w\u{F6}rld", "e\u{301} (decomposed, not to be normalized)", "日本語のテキスト",
                "👩‍👩‍👧‍👦 🏳️‍🌈 🇫🇷", "quote ' double \" backtick ` semicolon ; dash -- comment",
                "back\\slash \\\\ \\n \\0 \\x41", "line\nbreak\r\n\ttab\u{B}\u{C}", "\u{1}\u{1F}\u{7F}\u{80}\u{FFFD}\u{FEFF}\u{10FFFF}",
                "%_ * ? [a] $1 E'\\x00'", "{\"json\": [1, 2.5, null], \"nested\": {\"k\": \"v\\\"q\"}}",
                String(repeating: "0123456789abcdef", count: 4096),
                String(repeating: "ä😀\\'\n", count: 7500),
            ]
            #expect(bodies[13].utf8.count == 65_536)
            #expect(bodies[14].utf8.count > 65_536)
            #expect(try await meta.appendToLog(replay, bodies, limit: 100) == UInt64(bodies.count))
            let read = try await meta.readLog(replay, after: 0, limit: 100)
            #expect(read.map(\.position) == Array(1...UInt64(bodies.count)))
            // Bytes, not `String ==`, which calls canonically equivalent texts equal.
            #expect(read.map { Array($0.body.utf8) } == bodies.map { Array($0.utf8) })
        }
    }

    @Test(arguments: ShardBackend.metadataCases)
    func aBodyHoldingNULIsRefusedBeforeAnythingIsWritten(backend: ShardBackend) async throws {
        try await backend.withOpenLogs { meta async throws in
            let retry = migrationLog("m1")
            let refusal = MetadataError.invalidInput("log body 1 contains NUL (U+0000)")
            await #expect(throws: refusal) { try await meta.appendToLog(retry, ["fine", "bad\u{0}"], limit: 10) }
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 0))
            #expect(try await meta.appendToLog(retry, ["ok"], limit: 10) == 1)
            await #expect(throws: refusal) { try await meta.appendToLog(retry, ["fine", "\u{0}"], limit: 10) }
            await #expect(throws: refusal, "refused even when the limit would refuse it") {
                try await meta.appendToLog(retry, ["fine", "x\u{0}y"], limit: 0)
            }
            #expect(!refusal.isConflict)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 1, last: 1))
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == entries(1, ["ok"]))
            #expect(try await meta.appendToLog(retry, ["next"], limit: 10) == 2, "the refusals used no position")
        }
    }

    /// A log takes appends only while open: not before `openLogs` (which is idempotent and keeps
    /// what an open log holds), not after `dropLogs`.
    @Test(arguments: ShardBackend.metadataCases)
    func onlyAnOpenLogTakesAppends(backend: ShardBackend) async throws {
        try await backend.withMetadataStore { meta async throws in
            let retry = migrationLog("closed")
            #expect(try await meta.appendToLog(retry, ["a"], limit: 10) == nil, "never opened")
            #expect(try await meta.appendToLog(retry, [], limit: 10) == nil)
            #expect(try await meta.logStatus(retry) == LogStatus(entries: 0, last: 0))
            try await meta.openLogs(of: retry.migration)
            #expect(try await meta.appendToLog(retry, ["a", "b"], limit: 10) == 2)
            #expect(try await meta.appendToLog(migrationLog("closed", .replay), ["r"], limit: 10) == 1, "every kind opens")
            try await meta.openLogs(of: retry.migration)
            #expect(try await meta.appendToLog(retry, ["c"], limit: 10) == 3, "opening again keeps what it holds")
            try await meta.dropLogs(of: retry.migration)
            #expect(try await meta.appendToLog(retry, ["d"], limit: 10) == nil, "dropped")
            #expect(try await meta.readLog(retry, after: 0, limit: 10) == [])
        }
    }

    /// Positions follow commit order across handles (two processes on PostgreSQL): appends racing
    /// through both get gapless positions, each body once, and a reader following the log as it
    /// grows never finds a gap that a later commit fills.
    @Test(arguments: ShardBackend.metadataCases)
    func concurrentAppendsThroughTwoHandlesGetGaplessPositionsInCommitOrder(backend: ShardBackend) async throws {
        try await backend.withMetadataStores { first, second in
            try await expectGaplessConcurrentAppends(through: [first, second])
        }
    }
}

extension ShardBackend {
    /// A metadata store of this backend with the logs of every migration these tests name open.
    func withOpenLogs(_ body: (any MetadataStore) async throws -> Void) async throws {
        try await withMetadataStore { meta in
            for name in ["m", "m0", "m1", "m10", "m2", "m_1", "m_10", "m_1x", "m_2", "mx1", "race"] {
                try await meta.openLogs(of: ChangeStreamID(name)!)
            }
            try await body(meta)
        }
    }
}

/// Log `kind` of migration `migration`.
func migrationLog(_ migration: String, _ kind: MigrationLogID.Kind = .retry) -> MigrationLogID {
    MigrationLogID(migration: ChangeStreamID(migration)!, kind: kind)
}

/// Entries at consecutive positions from `first`.
private func entries(_ first: Int, _ bodies: [String]) -> [LogEntry] {
    bodies.enumerated().map { LogEntry(position: UInt64(first + $0.offset), body: $0.element) }
}

/// Two writers per handle append 100 times each to one log, batches of one and two bodies in
/// turn, while a reader on the last handle follows the log; then checks that every body holds
/// exactly the position its append returned, that positions are 1…N without a gap, and that
/// every read the reader made continued right after the entries it had already read.
func expectGaplessConcurrentAppends(
    through stores: [any MetadataStore], sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let replay = migrationLog("race", .replay)
    try await stores[0].openLogs(of: replay.migration)
    let (writersPerStore, rounds) = (2, 100)
    let total = stores.count * writersPerStore * (rounds / 2 * 3)
    guard let readerStore = stores.last else { return }
    let writersDone = DoneFlag()
    async let followed = follow(replay, in: readerStore, until: total, writersDone: writersDone)
    let appended = try await withThrowingTaskGroup(of: [LogEntry].self) { group in
        for (handle, store) in stores.enumerated() {
            for writer in 0..<writersPerStore {
                group.addTask {
                    var appended: [LogEntry] = []
                    for round in 0..<rounds {
                        let bodies = (0...round % 2).map { "h\(handle)-w\(writer)-r\(round)-b\($0)" }
                        let last = try #require(try await store.appendToLog(replay, bodies, limit: 10_000))
                        let first = last - UInt64(bodies.count) + 1
                        appended += bodies.enumerated().map { LogEntry(position: first + UInt64($0.offset), body: $0.element) }
                    }
                    return appended
                }
            }
        }
        let all = try await group.reduce(into: [LogEntry]()) { $0 += $1 }
        writersDone.value.withLock { $0 = true }
        return all
    }.sorted { $0.position < $1.position }
    #expect(appended.count == total, sourceLocation: sourceLocation)
    #expect(appended.map(\.position) == Array(1...UInt64(total)), sourceLocation: sourceLocation)
    #expect(Set(appended.map(\.body)).count == total, "every body appended once", sourceLocation: sourceLocation)
    let stored = try await readerStore.readLog(replay, after: 0, limit: 10_000)
    #expect(stored == appended, "each body is where its append said", sourceLocation: sourceLocation)
    #expect(try await followed == appended, "the reader saw the same log", sourceLocation: sourceLocation)
    #expect(try await stores[0].logStatus(replay) == LogStatus(entries: total, last: UInt64(total)), sourceLocation: sourceLocation)
}

/// Set once every writer has returned.
private final class DoneFlag: Sendable {
    let value = Mutex(false)
}

/// Reads `log` as it grows until it holds `total` entries (or, once the writers are done, a read
/// finds nothing more), each read after the last entry already read; records an issue, and
/// stops, when a read does not continue right after it: a position committed after a higher one
/// was visible. No deadline: on two loaded cores 600 PostgreSQL appends took over a minute.
private func follow(_ log: MigrationLogID, in store: any MetadataStore, until total: Int, writersDone: DoneFlag) async throws
    -> [LogEntry]
{
    var seen: [LogEntry] = []
    while seen.count < total {
        let done = writersDone.value.withLock { $0 }
        let next = try await store.readLog(log, after: UInt64(seen.count), limit: 64)
        if next.isEmpty && done { break }
        let expected = (0..<next.count).map { UInt64(seen.count + 1 + $0) }
        guard next.map(\.position) == expected else {
            Issue.record("read after \(seen.count) gave positions \(next.map(\.position))")
            break
        }
        seen += next
        // Yields the (two) threads to the writers, which the in-memory store never suspends.
        if next.isEmpty { try await Task.sleep(for: .milliseconds(1)) } else { await Task.yield() }
    }
    return seen
}
