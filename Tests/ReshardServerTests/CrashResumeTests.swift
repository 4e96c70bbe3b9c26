import Foundation
import ReshardAPI
import ReshardClient
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Testing

/// A real `reshard serve` process is SIGKILLed at each step of an add_shard migration
/// (`RESHARD_CRASH_AT`) while HTTP clients write (in every phase but copying: see `CopyQuiet`);
/// restarted on the same data folder, it resumes the migration to `done`. Every acknowledged
/// write and delete reads back, and the shard files, opened directly, hold every row on the
/// shard the final map names.
@Suite(.serialized) struct CrashResumeTests {
    struct Crash: Sendable, CustomTestStringConvertible {
        let name: String
        let spec: String
        var strategy = MigrationStrategy.cdcBackfill
        var testDescription: String {
            (strategy == .cdcBackfill ? "" : "\(strategy.rawValue) ") + (name == spec ? spec : "\(name) (\(spec))")
        }
    }

    static let crashes: [Crash] =
        [
            // The single preparing round ends in copying, so no round ends in `preparing`: the crash right
            // after prepare's work (and before its journal) is the first round that ends in copying.
            Crash(name: "preparing", spec: "copying#1"),
            Crash(name: "copying#2", spec: "copying#2"),
            Crash(name: "catching_up", spec: "catching_up"),
            Crash(name: "verifying", spec: "verifying"),
            Crash(name: "canary", spec: "canary#2"),
            Crash(name: "cutting_over:fence", spec: "cutting_over:fence"),
            Crash(name: "cutting_over:drain", spec: "cutting_over:drain"),
            Crash(name: "cutting_over:publish", spec: "cutting_over:publish"),
            Crash(name: "cutting_over:release", spec: "cutting_over:release"),
            Crash(name: "baking", spec: "baking"),
            Crash(name: "cleaning_up", spec: "cleaning_up"),
        ]
        + ["dual_writing", "copying#2", "verifying", "canary#2", "cutting_over:drain", "baking"].map {
            // dual_write: each phase with second writes, the pause of them, and the switch.
            Crash(name: $0, spec: $0, strategy: .dualWrite)
        }
        + ["recording", "catching_up", "canary#2", "cutting_over:publish"].map {
            // traffic_replay: recording, the replay, and the switch.
            Crash(name: $0, spec: $0, strategy: .trafficReplay)
        }
        + ["catching_up", "cutting_over:publish", "copying#2", "verifying", "serving_reads#2"].map {
            // write_new_read_old: the modes shown before the switch, the switch, the copy, the
            // verification after it, and the reads served step by step.
            Crash(name: $0, spec: $0, strategy: .writeNewReadOld)
        }
        + ["cutting_over:release", "copying#2", "baking"].map {
            // routing_first: the release to the new owners, the copy after it, the bake.
            Crash(name: $0, spec: $0, strategy: .routingFirst)
        }

    static let token = "crash-t0ken"
    static let auth = [("Authorization", "Bearer \(token)")]
    static let shards = (1...4).map { ShardID("s\($0)")! }
    static let newShard = ShardID("s5")!

    @Test(arguments: crashes)
    func resumesAfterKillNine(crash: Crash) async throws {
        let executable = try #require(
            ServerProcess.executable(),
            "no reshard executable beside \(CommandLine.arguments[0]) or in .build/debug: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token)
        defer { scratch.close() }

        let first = try scratch.start(port: 0, crashAt: crash.spec)
        let port = try #require(await first.boundPort(), "no \"reshard is serving\" line:\n\(first.logTail)")
        try #require(await first.waitUntilHealthy(port: port), "not healthy:\n\(first.logTail)")
        let plan = try Self.expectedPlan()
        let ledger = Ledger(order: .lastAcknowledged)
        let stop = StopFlag()
        try await Self.load(port: port, ledger: ledger)
        let quiet = CopyQuiet()
        let writers = Task { await Self.write(port: port, plan: plan, ledger: ledger, stop: stop, quiet: quiet) }
        defer { stop.set() }
        for _ in 0..<500 where ledger.counts["reads", default: 0] < 100 { try await Task.sleep(for: .milliseconds(10)) }
        quiet.migrationRequested()
        let answeredID = try await Self.startMigration(port: port, strategy: crash.strategy)

        // 1. The process kills itself at the crash point.
        let died = await first.waitForExit(seconds: 60)
        if !died {
            stop.set()
            Issue.record("the crash point \(crash.spec) was never reached: \(await Self.statusText(port: port))\n\(first.logTail)")
            return
        }
        #expect(first.process.terminationReason == .uncaughtSignal && first.process.terminationStatus == SIGKILL)
        #expect(first.log.contains("crash point"), "\(first.logTail)")

        // 2. Restarted on the same folder without the crash point, it finishes the migration.
        let acknowledgedBeforeRestart = ledger.counts["acknowledged puts", default: 0]
        let second = try scratch.start(port: port, crashAt: nil)
        try #require(await second.waitUntilHealthy(port: port), "the restarted server is not healthy:\n\(second.logTail)")
        let status = try await Self.explained("waiting for the resumed migration", second) {
            try await Self.waitUntilDone(port: port, answeredID: answeredID)
        }
        // A late crash point (cleanup) can finish before the writers reach the new process; give
        // them a bounded moment so the check below is about the restarted server too.
        for _ in 0..<500 where ledger.counts["acknowledged puts", default: 0] <= acknowledgedBeforeRestart + 10 {
            try await Task.sleep(for: .milliseconds(10))
        }
        stop.set()
        await writers.value
        try #require(status?.phase == "done", "not done after restart: \(String(describing: status))\n\(second.logTail)")

        // 3. Every answer a client got still holds.
        #expect(ledger.violations.isEmpty, "\(ledger.violations.prefix(5))")
        try await Self.explained("reading every row back", second) { try await Self.checkLedger(port: port, ledger: ledger) }
        // Not vacuous: the clients wrote beyond the initial rows, also to the restarted process.
        let counts = ledger.counts
        #expect(counts["acknowledged puts", default: 0] > acknowledgedBeforeRestart && acknowledgedBeforeRestart > 600, "\(counts)")
        #expect(counts["acknowledged deletes", default: 0] > 0, "\(counts)")

        // 4. On disk: the final map is the plan's target, every row is where it says, fences only
        // guard the ranges their shard gave away.
        await second.stop()
        #expect(second.process.terminationReason == .exit, "\(second.logTail)")
        try await Self.checkDataFolder(scratch.data, plan: plan)
    }

    /// The plan the server makes: a new folder's ring of s1…s4 at generation 1, plus s5.
    static func expectedPlan() throws -> MigrationPlan {
        let current = try RingPlacement().shardMap(for: shards, generation: 1)
        return try MigrationPlanner.plan(.addShard(newShard), current: current, registered: Set(shards + [newShard]))
    }

    /// Creates the table, loads 600 rows and registers s5.
    static func load(port: Int, ledger: Ledger) async throws {
        try await createTable(port: port, ledger: ledger)
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        let shard = try await admin.request("POST", "/v1/shards", headers: auth, body: Array(#"{"id":"s5"}"#.utf8))
        try #require(shard.status == 201, "\(shard.status) \(shard.text)")
    }

    /// Creates table kv and loads 600 rows, keys a0…a299 and b0…b299.
    static func createTable(port: Int, ledger: Ledger) async throws {
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        let table = try await admin.request("POST", "/v1/tables", headers: auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        try #require(table.status == 201, "\(table.status) \(table.text)")
        try await overConnections(port: port, keys: (0..<300).flatMap { ["a\($0)", "b\($0)"] }) { connection, pk in
            let put = try await connection.request("PUT", "/v1/tables/kv/rows/\(pk)", body: Array(#"{"v":0}"#.utf8))
            try #require(put.status == 201, "\(put.status) \(put.text)")
            let receipt = try API.decode(API.WriteReceipt.self, from: Data(put.body))
            ledger.acknowledge(pk, version: receipt.version, deleted: false)
        }
    }

    /// Starts adding s5; returns the migration's id if the answer arrived (an early crash point
    /// may kill the process before it does).
    /// `body`'s error, recorded with the step and whether the server still runs and its log:
    /// an HTTP error alone ("connection is closed") does not say which side ended what.
    static func explained<T>(_ step: String, _ server: ServerProcess, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            let state = server.process.isRunning ? "still runs" : "exited (\(server.process.terminationStatus))"
            Issue.record("\(step): \(error); the server \(state):\n\(server.logTail)")
            throw error
        }
    }

    static func startMigration(port: Int, strategy: MigrationStrategy = .cdcBackfill) async throws -> String? {
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        // write_new_read_old moves its reads in two steps.
        let reads = strategy.servesReadsGradually ? #","read_steps":[50,100],"read_step_ms":200"# : ""
        let body =
            #"{"kind":"add_shard","shard":"s5","strategy":""# + strategy.rawValue
            + #"","options":{"chunk_rows":50,"bake_ms":300,"tombstone_grace_ms":0,"canary_step_ms":50"# + reads + "}}"
        guard let created = try? await admin.request("POST", "/v1/migrations", headers: auth, body: Array(body.utf8)) else {
            return nil  // the process died before answering; the migration was journaled before it ran
        }
        try #require(created.status == 202, "\(created.status) \(created.text)")
        let id = try API.decode(API.MigrationCreated.self, from: Data(created.body)).id
        try #require(id != nil, "\(created.text)")
        return id
    }

    /// Two clients: one writes only keys outside the moving ranges (never held, so the old
    /// owners' changelogs move during every cutover step), one only keys inside them.
    static func write(port: Int, plan: MigrationPlan, ledger: Ledger, stop: StopFlag, quiet: CopyQuiet) async {
        let steady = (0..<300).map { "a\($0)" }.filter { plan.move(containing: KeyHash.of($0)) == nil }
        let moving = (0..<300).map { "b\($0)" }.filter { plan.move(containing: KeyHash.of($0)) != nil }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await quiet.watch(ports: [port], token: token, stop: stop) }
            for (index, keys) in [steady, moving].enumerated() {
                group.addTask {
                    await HTTPWriter(keys: keys, ports: [port], seed: UInt64(index + 1), ledger: ledger, stop: stop, quiet: quiet).run()
                }
            }
        }
    }

    /// Polls the migration (found by listing when its creation was never answered) until it ends.
    static func waitUntilDone(port: Int, answeredID: String?) async throws -> API.MigrationSummary? {
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        let listed = try await admin.request("GET", "/v1/migrations", headers: auth)
        let migrations = try API.decode(API.MigrationList.self, from: Data(listed.body)).migrations
        try #require(migrations.count == 1, "\(listed.text)")
        let id = migrations[0].id
        if let answeredID { #expect(answeredID == id) }
        var last: API.MigrationSummary?
        for _ in 0..<3_000 {
            let response = try await admin.request("GET", "/v1/migrations/\(id)", headers: auth)
            last = try API.decode(API.MigrationStatus.self, from: Data(response.body)).summary
            if let phase = last?.phase, phase == "done" || phase == "rolled_back" || phase == "failed" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        return last
    }

    /// The migration's detailed status as the server shows it, for failure messages.
    static func statusText(port: Int) async -> String {
        let connection = try? await HTTPConnection.connect(host: "127.0.0.1", port: port)
        let listed = try? await connection?.request("GET", "/v1/migrations", headers: auth)
        let id = listed.flatMap { try? API.decode(API.MigrationList.self, from: Data($0.body)).migrations.first?.id } ?? "?"
        let status = try? await connection?.request("GET", "/v1/migrations/\(id)", headers: auth)
        await connection?.close()
        return status?.text ?? "(no status)"
    }

    /// Reads every key a client was told about back through `port`.
    static func checkLedger(port: Int, ledger: Ledger) async throws {
        #expect(ledger.entries.count == 600)
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await connection.close() } }
        let report = try await ledger.check { pk in
            let response = try await connection.request("GET", "/v1/tables/kv/rows/\(pk)")
            try #require(response.status == 200 || response.status == 404, "GET \(pk): \(response.status) \(response.text)")
            guard response.status == 200 else { return nil }
            return Ledger.Read(version: try API.decode(API.RowMetadata.self, from: Data(response.body)).version)
        }
        #expect(report.isClean, "after the restart \(report)")
    }

    /// Runs `body` for every key, spread over four keep-alive connections.
    static func overConnections(
        port: Int, keys: [String], _ body: @escaping @Sendable (HTTPConnection, String) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<4 {
                group.addTask {
                    let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
                    defer { Task { await connection.close() } }
                    for pk in keys[lane...].enumerated().filter({ $0.offset % 4 == 0 }).map(\.element) { try await body(connection, pk) }
                }
            }
            try await group.waitForAll()
        }
    }

    /// The stopped server's folder, opened directly.
    static func checkDataFolder(_ path: String, plan: MigrationPlan) async throws {
        let folder = DataFolder(path: path)
        let metadata = try SQLiteMetadataStore(path: folder.metadataPath)
        #expect(try await metadata.shardMap(generation: 1) == plan.source)
        let map = try #require(try await metadata.currentShardMap())
        #expect(map == plan.target)
        let journals = try await metadata.migrations()
        #expect(journals.count == 1)
        for (id, journal) in journals { #expect(try MigrationJournal.decode(journal).phase == .done, "\(id)") }
        var live = 0
        for record in try await metadata.shards() {
            let store = try await folder.opener(record)
            for table in try await store.tables() {
                let rows = try await store.scan(table: table, range: .full, after: nil, limit: 100_000)
                live += rows.filter { !$0.isDeleted }.count
                let misplaced = rows.filter { map.owner(of: $0.hash) != record.id }.map(\.pk)
                #expect(misplaced.isEmpty, "\(misplaced.count) rows of \(table) on \(record.id) belong elsewhere: \(misplaced.prefix(5))")
            }
            // The old owners stay fenced at the new generation on what they gave away, so a router
            // still on the old map cannot write there; nothing else is fenced.
            let given = plan.moves.filter { $0.source == record.id }.map { Fence(range: $0.range, generation: map.generation) }
            #expect(Set(try await store.fences()) == Set(given), "fences of \(record.id)")
        }
        #expect(live > 0)
    }
}
