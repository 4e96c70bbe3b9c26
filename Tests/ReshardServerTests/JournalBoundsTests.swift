import Foundation
import ReshardAPI
import ReshardClient
import ReshardEngine
import ReshardStore
import Testing

/// A journal on disk is input too: one whose options are absurd (written by hand, or by a
/// release before the bounds) once made every start of `reshard serve` trap on arithmetic
/// overflow as it resumed the migration, so nothing, not even a rollback, could be done.
@Suite(.serialized, .timeLimit(.minutes(3))) struct JournalBoundsTests {
    static let token = "journal-bounds-token-0123456789"
    static let auth = [("Authorization", "Bearer \(token)")]

    @Test func aJournalWithAbsurdOptionsFailsItsMigrationAndServeStillStarts() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-journal")
        defer { scratch.close() }

        // A migration that waits at a gate in its canary, with replication live.
        let (first, port) = try await scratch.startServing()
        let id = try await Self.startWaitingMigration(port: port)
        first.killNow()

        // Its journal is edited on disk: every duration the runner adds to a clock is 2^64-1.
        let metadata = try SQLiteMetadataStore(path: scratch.data + "/meta.sqlite")
        let journal = try #require(try await metadata.migrations().first { $0.id == id }?.journal)
        var edited = journal
        for field in ["bakeMillis", "maxLagMillis", "tombstoneGraceMillis", "canaryStepMillis"] {
            let pattern = try Regex("\"\(field)\":[0-9]+")
            #expect(edited.contains(pattern), "\(field) not in the journal")
            edited.replace(pattern, with: "\"\(field)\":18446744073709551615")
        }
        // The migration holds the active slot, so admitting it again writes the whole text.
        #expect(try await metadata.admitMigration(id: id, journal: edited) == nil)
        await metadata.close()

        // Serve starts, answers, and shows the migration failed with the reason.
        let (second, again) = try await scratch.startServing()
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: again)
        defer { Task { await admin.close() } }
        var status: API.MigrationSummary?
        for _ in 0..<250 {
            let response = try await admin.request("GET", "/v1/migrations/\(id)", headers: Self.auth)
            status = try API.decode(API.MigrationStatus.self, from: Data(response.body)).summary
            if status?.phase == "failed" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status?.phase == "failed")
        #expect(status?.error?.contains("out of bounds") == true, "\(String(describing: status))")
        #expect(status?.error?.contains("_ms must be") == true, "\(String(describing: status))")

        // Resume is refused; rollback works, and the process is alive throughout.
        let resume = try await admin.request("POST", "/v1/migrations/\(id)/resume", headers: Self.auth)
        #expect(resume.status == 409, "\(resume.text)")
        let rollback = try await admin.request("POST", "/v1/migrations/\(id)/rollback", headers: Self.auth)
        #expect(rollback.status == 200, "\(rollback.text)")
        for _ in 0..<500 {
            let response = try await admin.request("GET", "/v1/migrations/\(id)", headers: Self.auth)
            status = try API.decode(API.MigrationStatus.self, from: Data(response.body)).summary
            if status?.phase == "rolled_back" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status?.phase == "rolled_back")
        #expect(second.process.isRunning, "\(second.logTail)")
        await second.stop()
    }

    @Test func aJournalThatCannotBeReadStandsFailedWithTheReasonAndServeStillStarts() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-journal")
        defer { scratch.close() }
        let (first, port) = try await scratch.startServing()
        await first.stop()

        let metadata = try SQLiteMetadataStore(path: scratch.data + "/meta.sqlite")
        for (id, journal) in [("mbroken", "{not json"), ("mempty", ""), ("mnul", "{\"id\":\"a\u{0}\"}"), ("mwrong", "[1,2,3]")] {
            // Admitted and released in turn: the whole text, written as given.
            #expect(try await metadata.admitMigration(id: id, journal: journal) == nil)
            try await metadata.releaseMigration(id: id)
        }
        // One of them was running: it holds the active slot, and keeps it, since its fences and
        // streams may still be in place.
        #expect(try await metadata.admitMigration(id: "mheld", journal: "{not json") == nil)
        await metadata.close()

        let (second, again) = try await scratch.startServing()
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: again)
        defer { Task { await admin.close() } }
        let list = try await admin.request("GET", "/v1/migrations", headers: Self.auth)
        let listed = try API.decode(API.MigrationList.self, from: Data(list.body)).migrations
        for id in ["mbroken", "mempty", "mnul", "mwrong", "mheld"] {
            let item = try #require(listed.first { $0.id == id }, "\(list.text)")
            #expect(item.kind == "unknown" && item.phase == "failed" && item.moves == 0 && item.rowsEstimated == nil, "\(list.text)")
            let one = try await admin.request("GET", "/v1/migrations/\(id)", headers: Self.auth)
            #expect(one.status == 200)
            guard case .unreadable(let short) = try API.decode(API.MigrationStatus.self, from: Data(one.body)) else {
                Issue.record("an unreadable journal answered as readable: \(one.text)")
                continue
            }
            #expect(short.error?.contains("the journal cannot be read") == true, "\(one.text)")
            let rollback = try await admin.request("POST", "/v1/migrations/\(id)/rollback", headers: Self.auth)
            #expect(rollback.status == 409, "\(rollback.text)")
        }
        let shard = try await admin.request("POST", "/v1/shards", headers: Self.auth, body: Array(#"{"id":"s5"}"#.utf8))
        #expect(shard.status == 201, "\(shard.text)")
        let create = try await admin.request(
            "POST", "/v1/migrations", headers: Self.auth, body: Array(#"{"kind":"add_shard","shard":"s5"}"#.utf8))
        #expect(create.status == 409 && create.text.contains("mheld"), "\(create.text)")
        #expect(second.process.isRunning)
        await second.stop()
    }

    /// Creates a table with a few rows and a new shard, then an add_shard that stops at the
    /// `before_cutover` gate, after its canary has read from the new owner.
    private static func startWaitingMigration(port: Int) async throws -> String {
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        let table = try await admin.request("POST", "/v1/tables", headers: auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        try #require(table.status == 201, "\(table.text)")
        for n in 0..<50 {
            let put = try await admin.request("PUT", "/v1/tables/kv/rows/k\(n)", body: Array(#"{"v":1}"#.utf8))
            try #require(put.status == 201, "\(put.text)")
        }
        let shard = try await admin.request("POST", "/v1/shards", headers: auth, body: Array(#"{"id":"s5"}"#.utf8))
        try #require(shard.status == 201, "\(shard.text)")
        let body = #"{"kind":"add_shard","shard":"s5","options":{"canary_step_ms":10,"gates":["before_cutover"]}}"#
        let created = try await admin.request("POST", "/v1/migrations", headers: auth, body: Array(body.utf8))
        try #require(created.status == 202, "\(created.text)")
        let id = try #require(try API.decode(API.MigrationCreated.self, from: Data(created.body)).id)
        for _ in 0..<1_000 {
            let status = try await admin.request("GET", "/v1/migrations/\(id)", headers: auth)
            if status.text.contains(#""gate":"before_cutover""#) { return id }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the migration never waited at before_cutover")
        return id
    }
}
