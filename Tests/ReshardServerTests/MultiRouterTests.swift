import Foundation
import Logging
import ReshardAPI
import ReshardClient
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two `reshard serve` processes share PostgreSQL metadata; the shards are databases on two
/// PostgreSQL servers. Clients write, delete and read through both routers at random (a read
/// often goes to the other router than the write before it) while the migrator adds a shard and
/// then removes one:
///
/// - During the add, router B ignores notifications and never re-reads on its own
///   (`--no-notifications`, a ten-minute `--refresh-ms`): it misses the cutover hold and the new
///   map, is refused by the old owners' fences, and catches up by re-reading the map (opening
///   the new shard it was never told of).
/// - The remove runs `routing_first`, so the map switches before the copy; router A, which runs
///   the migrator, is killed with SIGKILL mid-copy: B takes the advisory-lock lease and resumes
///   from the journal, while A, restarted, serves as a plain router.
///
/// Every acknowledged write and delete reads back through both routers, every row sits on the
/// shard the final map names, and no replication slot is left.
@Suite(
    .serialized, .timeLimit(.minutes(5)),
    .enabled(if: PostgresScratch.servers().count >= 2, "needs two PostgreSQL servers (RESHARD_PG_1, RESHARD_PG_2: scripts/test)"))
struct MultiRouterTests {
    /// The token `CrashResumeTests`' helpers send.
    static let token = CrashResumeTests.token
    static let auth = [("Authorization", "Bearer \(token)")]

    /// The metadata database and five shard databases, s1…s5 alternating between the servers.
    private struct Databases {
        let metadata: PostgresEndpoint
        let shards: [(id: String, endpoint: PostgresEndpoint)]

        static func create(on servers: [PostgresEndpoint]) async throws -> Databases {
            let metadata = try await PostgresScratch.createDatabase(on: servers[0], prefix: "meta")
            var shards: [(String, PostgresEndpoint)] = []
            for index in 1...5 {
                shards.append(("s\(index)", try await PostgresScratch.createDatabase(on: servers[(index - 1) % 2], prefix: "s\(index)")))
            }
            return Databases(metadata: metadata, shards: shards)
        }

        func url(_ id: String) -> String { shards.first { $0.id == id }?.endpoint.description ?? "" }

        func drop() async {
            for database in [metadata] + shards.map(\.endpoint) { try? await PostgresScratch.dropDatabase(database) }
        }
    }

    @Test func twoRoutersAddAndRemoveShardsUnderLoadAndHandOverTheMigrator() async throws {
        let executable = try #require(
            ServerProcess.executable(),
            "no reshard executable beside \(CommandLine.arguments[0]) or in .build/debug: swift build --build-tests")
        let databases = try await Databases.create(on: PostgresScratch.servers())
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-routers")
        do {
            try await run(scratch, databases)
        } catch {
            scratch.close()
            await databases.drop()
            throw error
        }
        scratch.close()
        await databases.drop()
    }

    private func run(_ scratch: ServerScratch, _ databases: Databases) async throws {
        let metadata = databases.metadata.description
        let initial = ["s1", "s2", "s3", "s4"].flatMap { ["--shard", "\($0)=\(databases.url($0))"] }
        let a = try scratch.start(["--data", scratch.root + "/a", "--metadata", metadata, "--name", "router-a"] + initial, port: 0)
        let portA = try #require(await a.boundPort(), "router A did not start:\n\(a.logTail)")
        try #require(await a.waitUntilHealthy(port: portA), "router A is not healthy:\n\(a.logTail)")
        try #require(await a.waitForLog("this process now runs the migrations"), "router A never led:\n\(a.logTail)")
        let ledger = Ledger(order: .lastAcknowledged)
        try await CrashResumeTests.createTable(port: portA, ledger: ledger)

        // B starts after the table exists and before s5 is registered; it hears nothing after.
        let b = try scratch.start(
            [
                "--data", scratch.root + "/b", "--metadata", metadata, "--name", "router-b", "--no-notifications", "--refresh-ms",
                "600000",
            ], port: 0)
        let portB = try #require(await b.boundPort(), "router B did not start:\n\(b.logTail)")
        try #require(await b.waitUntilHealthy(port: portB), "router B is not healthy:\n\(b.logTail)")
        // A cache follows the cluster's events through deaf router B, whose stream reads the
        // event log A's migrator appends to in the shared metadata.
        let follower = try EventStreamClient(port: portB)
        try #require(await follower.wait { $0.contains { $0.event == "hello" } }.first?.event == "hello", "no hello from B")
        // C and D are deaf as B is, and serve nothing until the add is done: their first request
        // meets the switch they missed for certain (B's first, amid the load, may fall anywhere).
        var deaf: [(server: ServerProcess, port: Int)] = []
        for name in ["c", "d"] {
            let server = try scratch.start(
                [
                    "--data", scratch.root + "/" + name, "--metadata", metadata, "--name", "router-" + name, "--no-notifications",
                    "--refresh-ms", "600000",
                ], port: 0)
            let port = try #require(await server.boundPort(), "router \(name) did not start:\n\(server.logTail)")
            try #require(await server.waitUntilHealthy(port: port), "router \(name) is not healthy:\n\(server.logTail)")
            deaf.append((server, port))
        }
        let probes = try await Self.writeProbes(portA)
        let s5 = try await Self.request(portA, "POST", "/v1/shards", #"{"id":"s5","url":"\#(databases.url("s5"))"}"#)
        try #require(s5.status == 201, "\(s5.status) \(s5.text)")

        let stop = StopFlag()
        let quiet = CopyQuiet()
        let ports = [portA, portB]
        let keys = ledger.entries.keys.sorted()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await quiet.watch(ports: ports, token: Self.token, stop: stop) }
                for lane in 0..<3 {
                    let own = keys.enumerated().filter { $0.offset % 3 == lane }.map(\.element)
                    group.addTask {
                        await HTTPWriter(keys: own, ports: ports, seed: UInt64(lane + 11), ledger: ledger, stop: stop, quiet: quiet).run()
                    }
                }
            }
        }
        defer { stop.set() }
        try await Self.waitForAnswers(ledger, ports: ports, each: 100)

        // 1. add_shard by dual_write: A's migrator holds A's writes and A writes both owners; B
        // learns only from fences, never sees the directive, and writes the old owners alone:
        // the changelog carries B's writes, and nothing is lost (checked below and at the end).
        quiet.migrationRequested()
        let added = try await Self.startMigration(
            portA, #"{"kind":"add_shard","shard":"s5","strategy":"dual_write","options":\#(Self.fastOptions)}"#)
        let addStatus = try await Self.waitForPhase(portA, added, ["done", "rolled_back", "failed"])
        try #require(addStatus?.phase == "done", "add_shard: \(String(describing: addStatus))\n\(a.logTail)")
        let addEvents = try EventStreamTests.events(
            await follower.wait { (try? EventStreamTests.events($0).contains { $0.migration == added }) ?? false })
        follower.close()
        #expect(addEvents.filter { $0.kind == "shard_map" }.map(\.generation) == [2], "\(addEvents)")
        #expect(addEvents.contains { $0.kind == "cleanup" && $0.migration == added })
        let lastSeen = try #require(addEvents.last?.position)
        let detail = try await Self.request(portA, "GET", "/v1/migrations/\(added)")
        #expect(detail.text.contains(#""change_capture":{"s1":"logical decoding (test_decoding)","s2""#), "\(detail.text)")
        // The status sums the routers' second writes (A's live, the others' from their reports).
        let (writtenA, writtenB) = (await Self.secondWrites(portA), await Self.secondWrites(portB))
        #expect(writtenA > 0 && writtenB == 0, "A wrote second writes, deaf B none: A \(writtenA), B \(writtenB)")
        var summed = 0
        for _ in 0..<250 {
            let answer = try await Self.request(portA, "GET", "/v1/migrations/\(added)")
            summed = (try? API.decode(API.MigrationDetail.self, from: Data(answer.body)))?.secondWrites?.written ?? 0
            if summed == writtenA + writtenB { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(summed == writtenA + writtenB, "the status shows \(summed) second writes, the routers counted \(writtenA) + \(writtenB)")
        try await Self.waitForAnswers(ledger, ports: ports, each: 100)
        var rerouted = 0
        for _ in 0..<500 {
            rerouted = await Self.fenceReroutes(portB)
            if rerouted > 0 && b.log.contains("learned of a shard from a newer map") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(rerouted > 0, "router B was never refused by a fence and re-routed")
        #expect(b.log.contains("learned of a shard from a newer map"), "router B never opened s5:\n\(b.logTail)")
        try await Self.probeDeafRouters(writer: deaf[0], reader: deaf[1], probes: probes, leader: portA)
        for (server, _) in deaf { await server.stop() }

        // 2. remove_shard by routing_first, slowed so the copy is under way when the migrator's
        // process dies: the map has switched, s1's rows are mostly only on s1, and B (which learns
        // the new map from a fence, and the modes with it) takes over the copy.
        quiet.migrationRequested()
        let removed = try await Self.startMigration(
            portA,
            #"{"kind":"remove_shard","shard":"s1","strategy":"routing_first","options":{"chunk_rows":10,"max_rows_per_second":40,"bake_ms":300,"tombstone_grace_ms":0,"canary_step_ms":50,"router_follow_ms":300}}"#
        )
        var copying: API.MigrationSummary?
        for _ in 0..<1_500 {
            copying = await Self.status(portA, removed)
            if copying?.phase == "copying", (copying?.rowsCopied ?? 0) > 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(
            copying?.phase == "copying" && (copying?.rowsCopied ?? 0) > 0, "never saw the copy under way: \(String(describing: copying))")
        a.killNow()
        let killed = ContinuousClock.now
        try #require(await b.waitForLog("this process now runs the migrations"), "router B never took over:\n\(b.logTail)")
        let handover = ContinuousClock.now - killed

        // A comes back on its port as a plain router: B keeps the lease.
        let restarted = try scratch.start(["--data", scratch.root + "/a", "--metadata", metadata, "--name", "router-a"], port: portA)
        try #require(await restarted.waitUntilHealthy(port: portA), "router A did not come back:\n\(restarted.logTail)")
        let removeStatus = try await Self.waitForPhase(portB, removed, ["done", "rolled_back", "failed"])
        try #require(removeStatus?.phase == "done", "remove_shard: \(String(describing: removeStatus))\n\(b.logTail)")
        #expect(b.log.contains("resuming migration"), "\(b.logTail)")
        // Back through B with Last-Event-ID: what was missed, once, in order, across the handover.
        let resumed = try EventStreamClient(port: portB, lastEventID: String(lastSeen))
        let removeEvents = try EventStreamTests.events(
            await resumed.wait { (try? EventStreamTests.events($0).contains { $0.migration == removed }) ?? false })
        resumed.close()
        #expect(removeEvents.map(\.position) == Array((lastSeen + 1)...(lastSeen + UInt64(removeEvents.count))), "\(removeEvents)")
        #expect(removeEvents.filter { $0.kind == "shard_map" }.map(\.generation) == [3], "\(removeEvents)")
        #expect(removeEvents.filter { $0.kind == "shard_map" }.allSatisfy { $0.moves.allSatisfy { $0.from == "s1" } })
        let notLeader = try await Self.request(portA, "POST", "/v1/migrations/\(removed)/pause", "{}")
        #expect(notLeader.status == 409 && notLeader.text.contains("not_leader"), "\(notLeader.status) \(notLeader.text)")
        #expect(!restarted.log.contains("this process now runs the migrations"))
        // Each dashboard names its own router and whether it leads: B since the handover, not A.
        for (port, name, leads) in [(portB, "router-b", true), (portA, "router-a", false)] {
            let view = try API.decode(API.Dashboard.self, from: Data(try await Self.request(port, "GET", "/v1/dashboard").body))
            #expect(view.router == name && view.routers.first?.name == name && view.routers.first?.leader == leads, "\(view.routers)")
            #expect(view.generation == 3 && view.history.count == 2 && view.migration?.id == removed, "\(view.history)")
        }
        try await Self.waitForAnswers(ledger, ports: ports, each: 100)
        stop.set()
        await load.value

        // 3. Every answer holds through either router; the clients really wrote through both.
        #expect(ledger.violations.isEmpty, "\(ledger.violations.prefix(5))")
        try await CrashResumeTests.checkLedger(port: portA, ledger: ledger)
        try await CrashResumeTests.checkLedger(port: portB, ledger: ledger)
        let counts = ledger.counts
        #expect(counts["acknowledged puts", default: 0] > 600 && counts["acknowledged deletes", default: 0] > 0, "\(counts)")

        // 4. In the databases: the final map, every live row where it names, no slot left.
        let placement = try await Self.checkPlacement(databases)
        var slots: [String] = []
        for _ in 0..<250 {
            slots = []
            for (id, database) in databases.shards {
                slots += try await PostgresScratch.replicationSlots(of: database).map { "\(id): \($0)" }
            }
            if slots.isEmpty { break }
            try await Task.sleep(for: .milliseconds(40))
        }
        #expect(slots.isEmpty, "replication slots left behind: \(slots)")
        print(
            "two routers: handover after SIGKILL \(handover), router B fence re-routes \(rerouted), live rows \(placement), "
                + "answers \(counts.filter { $0.key.hasPrefix("answered") || $0.key.hasPrefix("ack") || $0.key.hasPrefix("refused") })")

        await restarted.stop()
        await b.stop()
        #expect(restarted.process.terminationReason == .exit && b.process.terminationReason == .exit)
    }

    /// Two keys outside the clients' sets whose ranges the add moves to s5, written through A.
    private static func writeProbes(_ port: Int) async throws -> [String] {
        let plan = try CrashResumeTests.expectedPlan()
        let probes = (0..<1_000).map { "probe\($0)" }.filter { plan.move(containing: KeyHash.of($0)) != nil }.prefix(2)
        try #require(probes.count == 2)
        for pk in probes {
            let put = try await request(port, "PUT", "/v1/tables/kv/rows/\(pk)", #"{"probe":1}"#)
            try #require(put.status == 201, "\(put.status) \(put.text)")
        }
        return Array(probes)
    }

    /// After the add, each deaf router still routes by generation 1. `writer` writes a moved key:
    /// the old owner's fence refuses it, the router re-reads the map and writes to s5. `reader`
    /// reads a key just rewritten through the leader: the old owner still holds the old copy
    /// (until cleanup) and its fence sends the read to s5, so the read is not stale.
    private static func probeDeafRouters(
        writer: (server: ServerProcess, port: Int), reader: (server: ServerProcess, port: Int), probes: [String], leader: Int
    ) async throws {
        let written = try await request(writer.port, "PUT", "/v1/tables/kv/rows/\(probes[0])", #"{"probe":2}"#)
        try #require(written.status == 200, "deaf write: \(written.status) \(written.text)\n\(writer.server.logTail)")
        let receipt = try API.decode(API.WriteReceipt.self, from: Data(written.body))
        #expect(receipt.shard == "s5" && receipt.generation == 2, "\(written.text)")
        #expect(writer.server.log.contains("learned of a shard from a newer map"), "\(writer.server.logTail)")
        #expect(await fenceReroutes(writer.port) == 1)

        let rewritten = try await request(leader, "PUT", "/v1/tables/kv/rows/\(probes[1])", #"{"probe":3}"#)
        try #require(rewritten.status == 200, "\(rewritten.status) \(rewritten.text)")
        let latest = try API.decode(API.WriteReceipt.self, from: Data(rewritten.body))
        let read = try await request(reader.port, "GET", "/v1/tables/kv/rows/\(probes[1])")
        try #require(read.status == 200, "deaf read: \(read.status) \(read.text)")
        let seen = try API.decode(API.RowMetadata.self, from: Data(read.body))
        #expect(seen.version == latest.version, "a router on the old map read v\(seen.version); v\(latest.version) was acknowledged")
        #expect(await fenceReroutes(reader.port) == 1)
    }

    static let fastOptions = #"{"chunk_rows":50,"bake_ms":300,"tombstone_grace_ms":0,"canary_step_ms":50}"#

    /// Opens every shard database directly: the map is s2…s5, and each live row is on its owner.
    /// Returns how many live rows there are.
    private static func checkPlacement(_ databases: Databases) async throws -> Int {
        var logger = Logger(label: "reshard.test")
        logger.logLevel = .warning
        let metadata = try await PostgresMetadataStore.open(endpoint: databases.metadata, logger: logger)
        let map = try await metadata.currentShardMap()
        await metadata.close()
        let current = try #require(map)
        #expect(Set(current.shards.map(\.rawValue)) == ["s2", "s3", "s4", "s5"])
        var live = 0
        for (id, database) in databases.shards {
            let store = try await PostgresShardStore.open(shardID: try #require(ShardID(id)), endpoint: database, logger: logger)
            let rows = try await store.scan(table: try #require(TableName("kv")), range: .full, after: nil, limit: 100_000).filter {
                !$0.isDeleted
            }
            await store.close()
            live += rows.count
            let misplaced = rows.filter { current.owner(of: $0.hash).rawValue != id }.map(\.pk)
            #expect(misplaced.isEmpty, "\(misplaced.count) live rows on \(id) belong elsewhere: \(misplaced.prefix(5))")
        }
        #expect(live > 0)
        return live
    }

    private static func request(_ port: Int, _ method: String, _ path: String, _ body: String? = nil) async throws -> HTTPClientResponse {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
        defer { Task { await connection.close() } }
        return try await connection.request(method, path, headers: auth, body: body.map { Array($0.utf8) }, timeout: .seconds(20))
    }

    private static func startMigration(_ port: Int, _ body: String) async throws -> String {
        let created = try await request(port, "POST", "/v1/migrations", body)
        try #require(created.status == 202, "\(created.status) \(created.text)")
        return try #require(try API.decode(API.MigrationCreated.self, from: Data(created.body)).id)
    }

    private static func status(_ port: Int, _ id: String) async -> API.MigrationSummary? {
        guard let response = try? await request(port, "GET", "/v1/migrations/\(id)") else { return nil }
        return try? API.decode(API.MigrationStatus.self, from: Data(response.body)).summary
    }

    /// Polls migration `id` through `port` until its phase is one of `phases` (two minutes at most).
    private static func waitForPhase(_ port: Int, _ id: String, _ phases: Set<String>) async throws -> API.MigrationSummary? {
        var last: API.MigrationSummary?
        for _ in 0..<6_000 {
            last = await status(port, id)
            if let phase = last?.phase, phases.contains(phase) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        return last
    }

    /// Waits (bounded) until each router has answered `each` more client requests.
    private static func waitForAnswers(_ ledger: Ledger, ports: [Int], each: Int) async throws {
        let answered = { (counts: [String: Int]) in ports.map { counts["answered by \($0)", default: 0] } }
        let before = answered(ledger.counts)
        for _ in 0..<1_500 {
            if zip(answered(ledger.counts), before).allSatisfy({ $0 - $1 >= each }) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the routers did not answer \(each) more requests each: \(ledger.counts)")
    }

    /// How many second writes router `port` made that the new owner took.
    private static func secondWrites(_ port: Int) async -> Int {
        guard let response = try? await request(port, "GET", "/metrics") else { return 0 }
        return response.text.split(separator: "\n")
            .filter { $0.hasPrefix("reshard_second_writes_total{") && $0.contains(#"result="written""#) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0) { $0 + Int($1) }
    }

    /// How many requests router `port` sent to a new owner after a fence refused them.
    private static func fenceReroutes(_ port: Int) async -> Int {
        guard let response = try? await request(port, "GET", "/metrics") else { return 0 }
        return response.text.split(separator: "\n")
            .filter { $0.hasPrefix("reshard_fenced_requests_total{") && $0.contains(#"outcome="rerouted""#) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0) { $0 + Int($1) }
    }
}
