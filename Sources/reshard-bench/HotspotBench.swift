import ArgumentParser
import Foundation
import ReshardAPI
import ReshardClient
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Synchronization

/// A hot spot found and spread live: a Zipf workload (s = 1.1) whose hottest keys all live on
/// one of four shards, read from the routers' load (`GET /v1/load`), planned as a load
/// rebalance (its dry run predicts the balance), then run while the load goes on. Before and
/// after, the balance per shard is measured twice: by the router's own statistics and by the load
/// generator's count of its requests, mapped to shards by the map in force. Then a celebrity
/// key takes 40 % of the requests: it must be reported as a hot key, and a rebalance refused.
struct HotspotBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hotspot",
        abstract: "A Zipf hot shard spread live by a load rebalance; a single hot key reported, not split.",
        discussion: """
            Defaults: 20,000 keys, 1,500 requests/s (10 % writes), SQLite shards. Takes about a minute.

            Example:
              swift run -c release reshard-bench hotspot --backend sqlite
            """
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "Keys in the table (the Zipf ranks).") var keys = 20_000
    @Option(help: "Requests per second offered.") var rate = 1_500

    func validate() throws {
        guard (1_000...1_000_000).contains(keys) else { throw ValidationError("--keys must be 1000...1000000") }
        guard (100...20_000).contains(rate) else { throw ValidationError("--rate must be 100...20000") }
    }

    func run() async throws {
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(environment: environment, keys: keys, rate: rate).present(out: options.out)
    }

    static func measure(environment: BenchEnvironment, keys: Int, rate: Int) async throws -> BenchFile<HotspotReport> {
        try await BenchFile.measure("hotspot", environment) { backend in
            try await HotspotScenario(backend: backend, servers: environment.servers, keys: keys, rate: rate).measure()
        }
    }
}

struct HotspotReport: BackendReport {
    /// The balance of one measured period, by two counts.
    struct Balance: Codable, Sendable {
        /// The busiest shard's requests over the mean: by `GET /v1/load`, and by the generator.
        let routerMaxOverMean: Double
        let generatorMaxOverMean: Double
        /// Each shard's share of the requests, by the generator.
        let generatorShares: [String: Double]
        let requests: Int
        let finding: String
    }

    let backend: String
    let keys: Int
    let rate: Int
    let hotShard: String
    let before: Balance
    /// The dry run's plan: moves, rows, predicted max/mean.
    let proposedMoves: Int
    let proposedRows: Int
    let predictedMaxOverMean: Double
    let migrationSeconds: Double
    let writePauseMillis: Double?
    let after: Balance
    /// Every request of the run, the ones not answered as expected, and the written keys read back.
    let requests: Int
    let errors: Int
    let writtenKeys: Int
    let lost: Int
    /// The single-hot-key run: its finding, the key named, and how a rebalance was answered.
    let celebrityFinding: String
    let celebrityKey: String?
    let celebrityRebalance: String

    var markdown: String {
        let rows = [
            [
                "busiest shard / mean, by the router", String(format: "%.2f", before.routerMaxOverMean),
                String(format: "%.2f", after.routerMaxOverMean),
            ],
            [
                "busiest shard / mean, by the load generator", String(format: "%.2f", before.generatorMaxOverMean),
                String(format: "%.2f", after.generatorMaxOverMean),
            ],
            ["finding", before.finding, after.finding],
            ["requests counted", grouped(before.requests), grouped(after.requests)],
        ]
        var lines = [
            "### hotspot, \(backend): Zipf s = 1.1 over \(grouped(keys)) keys, \(grouped(rate)) requests/s, hottest keys on \(hotShard)",
            "",
            "| figure | before | after |",
            "| --- | ---: | ---: |",
        ]
        lines += rows.map { "| \($0[0]) | \($0[1]) | \($0[2]) |" }
        lines += [
            "",
            String(
                format: "proposal: rebalance by requests, %d moves, %@ rows, predicted %.2f; ran live in %.1f s, write pause %@",
                proposedMoves, grouped(proposedRows), predictedMaxOverMean, migrationSeconds,
                writePauseMillis.map { String(format: "%.1f ms", $0) } ?? "n/a"),
            "requests \(grouped(requests)), errors \(errors); \(grouped(writtenKeys)) written keys read back, lost or stale \(lost)",
            "single hot key: finding \(celebrityFinding) (\(celebrityKey ?? "none")); rebalance answered \(celebrityRebalance)",
        ]
        return lines.joined(separator: "\n")
    }

    var checks: [TargetCheck] {
        [
            .atMost("hotspot max/mean after, router", backend, after.routerMaxOverMean, 1.10, detail: "GET /v1/load, 10 s after the move"),
            .atMost(
                "hotspot max/mean after, generator", backend, after.generatorMaxOverMean, 1.10, detail: "the load's own count, same 10 s"),
            .atMost("hotspot lost or stale writes", backend, Double(lost), 0, detail: "\(writtenKeys) written keys read back"),
            .atMost(
                "hotspot single hot key split", backend, celebrityRebalance == "409 hot_key" && celebrityFinding == "hot_key" ? 0 : 1, 0,
                detail: "finding \(celebrityFinding), rebalance \(celebrityRebalance)"),
        ]
    }
}

struct HotspotScenario {
    let backend: ShardBackend
    let servers: [PostgresEndpoint]
    let keys: Int
    let rate: Int
    let token = "hotspot-bench-" + UUID().uuidString

    func measure() async throws -> HotspotReport {
        try await withBenchCluster("hotspot", backend: backend, shards: 4, servers: servers) { cluster, manager in
            say("hotspot, \(backend.rawValue): loading \(grouped(keys)) rows …")
            _ = try await BenchData.load(cluster, table: benchTable, rows: keys)
            let server = try await LoopbackServer.reshard(cluster, migrations: manager, token: token)
            let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: server.port)
            do {
                let report = try await run(cluster, server: server, admin: admin)
                await admin.close()
                await server.stop()
                return report
            } catch {
                await admin.close()
                await server.stop()
                throw error
            }
        }
    }

    private func run(_ cluster: ScratchCluster, server: LoopbackServer, admin: HTTPConnection) async throws -> HotspotReport {
        let map = cluster.router.shardMap
        // The shard whose keys take the hottest ranks: the one owning the most keys.
        let owners = (0..<keys).map { map.owner(of: KeyHash.of("k\($0)")) }
        let hot = Dictionary(grouping: owners, by: { $0 }).max { ($0.value.count, $1.key) < ($1.value.count, $0.key) }?.key ?? map.shards[0]
        let ranked = (0..<keys).filter { owners[$0] == hot } + (0..<keys).filter { owners[$0] != hot }
        let load = ZipfLoad(port: server.port, keyOfRank: ranked, rate: rate, clients: 8)
        let running = Task { try await load.run() }

        say(
            "hotspot: Zipf load on, the hottest \(grouped(ranked.count - (keys - owners.filter { $0 == hot }.count))) keys on \(hot); 12 s to warm …"
        )
        try await Task.sleep(for: .seconds(12))
        let before = try await balance(admin, load: load, map: cluster.router.shardMap)
        say(
            String(
                format: "before: busiest / mean %.2f by the router, %.2f by the generator; %@", before.routerMaxOverMean,
                before.generatorMaxOverMean, before.finding))

        let dryRun: API.MigrationCreated = try await post(admin, #"{"kind":"rebalance","signal":"requests","dry_run":true}"#)
        let predicted = dryRun.plan.balance?.predictedMaxOverMean ?? 0
        say(
            String(
                format: "proposal: %d moves, %@ rows, predicted busiest / mean %.2f", dryRun.plan.moves.count, grouped(dryRun.plan.rows),
                predicted))
        let started = ContinuousClock.now
        let created: API.MigrationCreated = try await post(
            admin, #"{"kind":"rebalance","signal":"requests","options":{"bake_ms":1000,"canary_steps":[10,100],"canary_step_ms":500}}"#)
        let id = try created.id.orThrow("the migration's id")
        var phase = ""
        var pause: Double?
        while ContinuousClock.now - started < .seconds(600) {
            let status = try await admin.request("GET", "/v1/migrations/\(id)", headers: auth)
            if case .detail(let detail) = try API.decode(API.MigrationStatus.self, from: Data(status.body)) {
                if detail.phase != phase {
                    phase = detail.phase
                    say(String(format: "  %6.1f s  %@", seconds(since: started), phase))
                }
                pause = detail.writePauses.last.map(\.maxMs)
            }
            if ["done", "rolled_back", "failed"].contains(phase) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let migrationSeconds = seconds(since: started)
        guard phase == "done" else { throw BenchError("the rebalance ended \(phase)") }

        // Ten complete windows wholly after the switch.
        try await Task.sleep(for: .seconds(12))
        let after = try await balance(admin, load: load, map: cluster.router.shardMap)
        say(
            String(
                format: "after: busiest / mean %.2f by the router, %.2f by the generator; %@", after.routerMaxOverMean,
                after.generatorMaxOverMean, after.finding))
        load.stop()
        let samples = try await running.value
        let (written, lost) = try await readBack(admin, load: load)

        // One key takes 40 % of the requests: named, and no rebalance planned around it.
        say("hotspot: a celebrity key takes 40 % of the requests; 12 s …")
        let celebrity = ZipfLoad(port: server.port, keyOfRank: ranked, rate: rate, clients: 8, celebrityShare: 0.4)
        let celebrityRun = Task { try await celebrity.run() }
        try await Task.sleep(for: .seconds(12))
        let report: API.LoadReport = try API.decode(
            API.LoadReport.self, from: Data(try await admin.request("GET", "/v1/load?windows=10", headers: auth).body))
        let refused = try await admin.request(
            "POST", "/v1/migrations", headers: auth + [("Content-Type", "application/json")],
            body: Array(#"{"kind":"rebalance","signal":"requests","dry_run":true}"#.utf8))
        let code = (try? API.decode(API.ErrorBody.self, from: Data(refused.body)).error.code) ?? "none"
        celebrity.stop()
        _ = try await celebrityRun.value
        say("single hot key: \(report.finding.kind) \(report.finding.key ?? ""); rebalance answered \(refused.status) \(code)")

        return HotspotReport(
            backend: backend.rawValue, keys: keys, rate: rate, hotShard: hot.rawValue, before: before,
            proposedMoves: dryRun.plan.moves.count,
            proposedRows: dryRun.plan.rows, predictedMaxOverMean: predicted, migrationSeconds: migrationSeconds, writePauseMillis: pause,
            after: after, requests: samples.count, errors: samples.filter { !$0.ok }.count, writtenKeys: written, lost: lost,
            celebrityFinding: report.finding.kind, celebrityKey: report.finding.key, celebrityRebalance: "\(refused.status) \(code)")
    }

    private var auth: [(String, String)] { [("Authorization", "Bearer \(token)")] }

    private func post<T: Decodable>(_ admin: HTTPConnection, _ body: String) async throws -> T {
        let response = try await admin.request(
            "POST", "/v1/migrations", headers: auth + [("Content-Type", "application/json")], body: Array(body.utf8))
        guard (200..<300).contains(response.status) else {
            throw BenchError("POST /v1/migrations answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        return try API.decode(T.self, from: Data(response.body))
    }

    /// The last 10 complete one-second windows, by the router and by the generator's own count
    /// of the same seconds (its requests per key, mapped to shards by `map`).
    private func balance(_ admin: HTTPConnection, load: ZipfLoad, map: ShardMap) async throws -> HotspotReport.Balance {
        let now = wallMillis()
        let report: API.LoadReport = try API.decode(
            API.LoadReport.self, from: Data(try await admin.request("GET", "/v1/load?windows=10", headers: auth).body))
        let end = now / 1_000 * 1_000
        let counts = load.counts(fromWallMillis: end - 10_000, to: end)
        var perShard = Dictionary(uniqueKeysWithValues: map.shards.map { ($0, 0) })
        for (key, count) in counts { perShard[map.owner(of: KeyHash.of("k\(key)")), default: 0] += count }
        let total = perShard.values.reduce(0, +)
        let mean = Double(total) / Double(max(1, perShard.count))
        return HotspotReport.Balance(
            routerMaxOverMean: report.maxOverMean, generatorMaxOverMean: mean > 0 ? Double(perShard.values.max() ?? 0) / mean : 1,
            generatorShares: Dictionary(
                uniqueKeysWithValues: perShard.map { ($0.key.rawValue, total > 0 ? Double($0.value) / Double(total) : 0) }),
            requests: total, finding: report.finding.kind)
    }

    /// Reads back every key the load wrote: its body must be the last write acknowledged (a key
    /// whose last write got no answer may hold either).
    private func readBack(_ admin: HTTPConnection, load: ZipfLoad) async throws -> (written: Int, lost: Int) {
        var lost = 0
        let writes = load.lastWrites()
        for (key, write) in writes {
            let response = try await admin.request("GET", "/v1/tables/\(benchTable)/rows/k\(key)")
            let body = response.status == 200 ? String(decoding: response.body, as: UTF8.self) : ""
            let expected = String(decoding: BenchLoad.body(key, step: write.step), as: UTF8.self)
            let alternative = write.unanswered.map { String(decoding: BenchLoad.body(key, step: $0), as: UTF8.self) }
            if !body.contains(expected.dropFirst().dropLast()) && !(alternative.map { body.contains($0.dropFirst().dropLast()) } ?? false) {
                lost += 1
                if lost <= 5 { say("  k\(key): expected step \(write.step), read \(response.status) \(body.prefix(120))") }
            }
        }
        return (writes.count, lost)
    }
}

/// Zipf (s = 1.1) requests over `keyOfRank` (the key of rank 1 first) at a fixed total rate on an
/// open schedule; 10 % writes, each key written by one client only (so its last acknowledged
/// write is its value). Counts every request per key and second, for the independent balance.
final class ZipfLoad: Sendable {
    struct Write: Sendable {
        var step: Int
        /// The step of a later write that got no answer: it may or may not have landed.
        var unanswered: Int?
    }

    let port: Int
    let clients: Int
    let rate: Int
    private let keyOfRank: [Int]
    /// Cumulative probabilities of the ranks.
    private let cdf: [Double]
    private let celebrityShare: Double
    private let stopped = Atomic(false)
    /// Requests per wall second, per key.
    private let counted = Mutex<[UInt64: [Int: Int]]>([:])
    private let writes = Mutex<[Int: Write]>([:])

    init(port: Int, keyOfRank: [Int], rate: Int, clients: Int, celebrityShare: Double = 0) {
        self.port = port
        self.keyOfRank = keyOfRank
        self.rate = rate
        self.clients = clients
        self.celebrityShare = celebrityShare
        var sum = 0.0
        var cdf: [Double] = []
        cdf.reserveCapacity(keyOfRank.count)
        for rank in 1...keyOfRank.count {
            sum += 1 / pow(Double(rank), 1.1)
            cdf.append(sum)
        }
        self.cdf = cdf.map { $0 / sum }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Requests each key got in the wall seconds `[from, to)`.
    func counts(fromWallMillis from: UInt64, to: UInt64) -> [Int: Int] {
        counted.withLock { counted in
            var sum: [Int: Int] = [:]
            for (second, keys) in counted where second * 1_000 >= from && second * 1_000 < to {
                for (key, count) in keys { sum[key, default: 0] += count }
            }
            return sum
        }
    }

    func lastWrites() -> [Int: Write] { writes.withLock { $0 } }

    /// Runs until `stop()`; returns every request.
    func run() async throws -> [BenchLoad.Sample] {
        try await withThrowingTaskGroup(of: [BenchLoad.Sample].self) { group in
            for client in 0..<clients { group.addTask { try await self.client(client) } }
            var all: [BenchLoad.Sample] = []
            for try await samples in group { all += samples }
            return all
        }
    }

    private func key(_ random: inout SeededRandom) -> Int {
        let u = Double(random.next() >> 11) / Double(1 << 53)
        if celebrityShare > 0 && u < celebrityShare { return keyOfRank[keyOfRank.count / 2] }
        let v = celebrityShare > 0 ? (u - celebrityShare) / (1 - celebrityShare) : u
        var (low, high) = (0, cdf.count - 1)
        while low < high {
            let middle = (low + high) / 2
            if cdf[middle] < v { low = middle + 1 } else { high = middle }
        }
        return keyOfRank[low]
    }

    private func client(_ client: Int) async throws -> [BenchLoad.Sample] {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        var random = SeededRandom(seed: UInt64(client + 1) &* 0xD1B5_4A32_D192_ED03)
        var samples: [BenchLoad.Sample] = []
        let start = ContinuousClock.now
        let interval = Duration.nanoseconds(1_000_000_000 * Int64(clients) / Int64(max(1, rate)))
        var next = ContinuousClock.now
        var step = 0
        // A bound on the run whatever happens: a benchmark's load loop never runs unbounded.
        while !stopped.load(ordering: .relaxed) && samples.count < 2_000_000 {
            next += interval
            if next > .now { try await Task.sleep(until: next) }
            let key = key(&random)
            // Writes only to this client's keys: about 10 % of all requests.
            let isWrite = key % clients == client && random.next() % 100 < UInt64(min(100, 10 * clients / 2))
            let path = "/v1/tables/\(benchTable)/rows/k\(key)"
            let started = ContinuousClock.now
            let wall = wallMillis()
            step += 1
            var status: UInt16 = 0
            do {
                let response =
                    isWrite
                    ? try await connection.request("PUT", path, body: BenchLoad.body(key, step: step))
                    : try await connection.request("GET", path)
                status = UInt16(clamping: response.status)
            } catch let error as HTTPClientError {
                say("  zipf client \(client): \(error)")
                if isWrite { writes.withLock { $0[key, default: Write(step: 0)].unanswered = step } }
                break
            }
            if isWrite {
                writes.withLock { writes in
                    if status == 200 || status == 201 {
                        writes[key] = Write(step: step)
                    } else {
                        writes[key, default: Write(step: 0)].unanswered = step
                    }
                }
            }
            counted.withLock { $0[wall / 1_000, default: [:]][key, default: 0] += 1 }
            samples.append(
                BenchLoad.Sample(
                    startMicros: UInt64((started - start).wholeMicroseconds),
                    latencyMicros: UInt32(clamping: (ContinuousClock.now - started).wholeMicroseconds), isWrite: isWrite, status: status))
        }
        await connection.close()
        return samples
    }
}
