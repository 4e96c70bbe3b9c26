import Foundation
import ReshardAPI
import ReshardClient
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Testing

/// A real `reshard serve` process is SIGKILLed at each step of a shard-key change
/// (`RESHARD_CRASH_AT`) while HTTP clients write rows whose new key changes and delete them;
/// restarted on the same folder, it resumes to `done`. Every acknowledged write and delete reads
/// back by primary key, and the shard files, opened directly, hold every live row under the key
/// its body names, on the shard that owns that key, with the old layout gone.
@Suite(.serialized) struct ShardKeyCrashTests {
    static let crashes = [
        "copying#2", "verifying", "canary#2", "cutting_over:drain", "cutting_over:publish", "baking",
    ]

    @Test(arguments: crashes)
    func aShardKeyChangeResumesAfterKillNine(crash: String) async throws {
        let executable = try #require(
            ServerProcess.executable(),
            "no reshard executable beside \(CommandLine.arguments[0]) or in .build/debug: swift build --build-tests")
        let token = CrashResumeTests.token
        let scratch = try ServerScratch(executable: executable, token: token)
        defer { scratch.close() }
        let first = try scratch.start(port: 0, crashAt: crash)
        let port = try #require(await first.boundPort(), "no \"reshard is serving\" line:\n\(first.logTail)")
        try #require(await first.waitUntilHealthy(port: port), "not healthy:\n\(first.logTail)")

        let ledger = Ledger(order: .lastAcknowledged)
        try await Self.load(port: port, ledger: ledger)
        let stop = StopFlag()
        let quiet = CopyQuiet()
        let keys = (0..<300).flatMap { ["a\($0)", "b\($0)"] }
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await quiet.watch(ports: [port], token: token, stop: stop) }
                for lane in 0..<2 {
                    let own = keys.enumerated().filter { $0.offset % 2 == lane }.map(\.element)
                    group.addTask {
                        await HTTPWriter(keys: own, ports: [port], seed: UInt64(lane + 1), ledger: ledger, stop: stop, quiet: quiet).run()
                    }
                }
            }
        }
        defer { stop.set() }
        for _ in 0..<500 where ledger.counts["reads", default: 0] < 100 { try await Task.sleep(for: .milliseconds(10)) }
        quiet.migrationRequested()
        let answeredID = try await Self.startMigration(port: port)

        let died = await first.waitForExit(seconds: 60)
        if !died {
            stop.set()
            Issue.record("the crash point \(crash) was never reached: \(await CrashResumeTests.statusText(port: port))\n\(first.logTail)")
            return
        }
        #expect(first.process.terminationReason == .uncaughtSignal && first.process.terminationStatus == SIGKILL)

        let acknowledgedBeforeRestart = ledger.counts["acknowledged puts", default: 0]
        let second = try scratch.start(port: port, crashAt: nil)
        try #require(await second.waitUntilHealthy(port: port), "the restarted server is not healthy:\n\(second.logTail)")
        let status = try await CrashResumeTests.waitUntilDone(port: port, answeredID: answeredID)
        for _ in 0..<500 where ledger.counts["acknowledged puts", default: 0] <= acknowledgedBeforeRestart + 10 {
            try await Task.sleep(for: .milliseconds(10))
        }
        stop.set()
        await writers.value
        try #require(status?.phase == "done", "not done after restart: \(String(describing: status))\n\(second.logTail)")

        #expect(ledger.violations.isEmpty, "\(ledger.violations.prefix(5))")
        try await CrashResumeTests.checkLedger(port: port, ledger: ledger)
        #expect(ledger.counts["acknowledged puts", default: 0] > acknowledgedBeforeRestart, "\(ledger.counts)")
        await second.stop()
        #expect(second.process.terminationReason == .exit, "\(second.logTail)")
        try await Self.checkDataFolder(scratch.data)
    }

    /// Creates table kv (placed by its key) and loads 600 rows, each with a group `g`.
    static func load(port: Int, ledger: Ledger) async throws {
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        let table = try await admin.request(
            "POST", "/v1/tables", headers: CrashResumeTests.auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        try #require(table.status == 201, "\(table.status) \(table.text)")
        let keys = (0..<300).flatMap { ["a\($0)", "b\($0)"] }
        try await CrashResumeTests.overConnections(port: port, keys: keys) { connection, pk in
            let body = Array(#"{"v":0,"g":"g\#(pk.utf8.count % 16)"}"#.utf8)
            let put = try await connection.request("PUT", "/v1/tables/kv/rows/\(pk)", body: body)
            try #require(put.status == 201, "\(put.status) \(put.text)")
            ledger.acknowledge(pk, version: try API.decode(API.WriteReceipt.self, from: Data(put.body)).version, deleted: false)
        }
    }

    /// Starts placing kv by `g`; the id if the answer arrived before a crash point killed the process.
    static func startMigration(port: Int) async throws -> String? {
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        let body =
            #"{"kind":"change_shard_key","table":"kv","shard_key":"g","options":{"chunk_rows":50,"bake_ms":300,"tombstone_grace_ms":0,"canary_step_ms":50}}"#
        guard let created = try? await admin.request("POST", "/v1/migrations", headers: CrashResumeTests.auth, body: Array(body.utf8))
        else { return nil }
        try #require(created.status == 202, "\(created.status) \(created.text)")
        return try API.decode(API.MigrationCreated.self, from: Data(created.body)).id
    }

    /// The stopped server's folder: kv placed by `g` on layout 2, every live row under its body's
    /// `g` on the shard owning it, the old layout's table dropped everywhere, nothing retired but it.
    static func checkDataFolder(_ path: String) async throws {
        let folder = DataFolder(path: path)
        let metadata = try SQLiteMetadataStore(path: folder.metadataPath)
        let table = try #require(try await metadata.tables().first { $0.name.rawValue == "kv" })
        #expect(table.shardKey == "g" && table.layoutGeneration == 2 && table.lookup != nil)
        let map = try #require(try await metadata.currentShardMap())
        for (id, journal) in try await metadata.migrations() { #expect(try MigrationJournal.decode(journal).phase == .done, "\(id)") }
        var live = 0
        for record in try await metadata.shards() {
            let store = try await folder.opener(record)
            #expect(try await !store.tables().contains(TableName("kv")!), "the old layout is dropped on \(record.id)")
            for row in try await store.scan(table: table.storage, range: .full, after: nil, limit: 100_000) where !row.isDeleted {
                live += 1
                #expect(map.owner(of: KeyHash.of(row.shardKey)) == record.id, "\(row.pk) is on \(record.id)")
                #expect(row.body?.contains(#""g":"\#(row.shardKey)""#) == true, "\(row.pk) sits under \(row.shardKey): \(row.body ?? "")")
            }
        }
        #expect(live > 0)
    }
}
