import ArgumentParser
import Foundation
import Logging
import Metrics
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// The options every scenario takes.
struct BenchOptions: ParsableArguments {
    @Flag(help: "A short run: smaller sizes and fewer rounds (the whole suite in a few minutes).")
    var quick = false

    @Option(help: "Which shard backends to measure: sqlite, postgres or all (PostgreSQL is skipped, with a notice, when none is at hand).")
    var backend: BackendChoice = .all

    @Option(help: "Where the JSON results go.")
    var out = "benchmarks/results"
}

/// The table every benchmark cluster holds.
let benchTable = "bench"

/// What a scenario run produced: a Markdown report, the targets it measured, and its JSON.
protocol BenchResult: Encodable, Sendable {
    var markdown: String { get }
    var checks: [TargetCheck] { get }
    /// Writes the JSON to `folder`; returns the dated file's path.
    func write(to folder: String) throws -> String
}

extension BenchResult {
    /// Prints the report and writes the JSON, as every scenario command ends.
    func present(out: String) throws {
        say(markdown)
        say("\nwrote \(try write(to: out))")
    }
}

/// A scenario's figures on one backend.
protocol BackendReport: Codable, Sendable {
    var markdown: String { get }
    var checks: [TargetCheck] { get }
}

/// The file of a scenario measured on each backend of a run.
struct BenchFile<Report: BackendReport>: BenchResult, Codable {
    let benchmark: String
    let date: String
    let backends: [Report]
    /// Other files the run wrote (charts).
    let files: [String]
    let skipped: String?

    var checks: [TargetCheck] { backends.flatMap(\.checks) }

    var markdown: String {
        (backends.map(\.markdown) + (files.isEmpty ? [] : ["wrote " + files.joined(separator: ", ")])
            + (checks.isEmpty ? [] : [TargetCheck.markdown(checks)]))
            .joined(separator: "\n\n")
    }

    func write(to folder: String) throws -> String { try BenchResultFile.write(self, name: benchmark, date: date, to: folder) }

    /// Runs `measure` on every backend of `environment`, in order.
    static func measure(
        _ benchmark: String, _ environment: BenchEnvironment, files: [String] = [],
        _ measure: (ShardBackend) async throws -> Report
    ) async throws -> BenchFile {
        var reports: [Report] = []
        for backend in environment.backends { reports.append(try await measure(backend)) }
        return BenchFile(
            benchmark: benchmark, date: ISO8601DateFormatter().string(from: Date()), backends: reports, files: files,
            skipped: environment.skipped)
    }
}

/// The `--backend` values.
enum BackendChoice: String, ExpressibleByArgument, CaseIterable, Sendable {
    case sqlite, postgres, all
}

/// One figure that has a target, compared with its limit measured in the same run.
struct TargetCheck: Codable, Sendable {
    /// The figure, as the issue's table names it.
    let figure: String
    /// `sqlite`, `postgres` or `core` (no backend).
    let backend: String
    /// The target as text (`≥ 0.70`, `< 10 ms`).
    let target: String
    /// The measured ratio or figure the target is about.
    let value: Double
    /// Whether it met the target.
    let met: Bool
    /// The figures the value was computed from.
    let detail: String

    static func atLeast(_ figure: String, _ backend: String, _ value: Double, _ limit: Double, detail: String) -> TargetCheck {
        TargetCheck(figure: figure, backend: backend, target: "≥ \(format(limit))", value: value, met: value >= limit, detail: detail)
    }

    static func atMost(_ figure: String, _ backend: String, _ value: Double, _ limit: Double, detail: String) -> TargetCheck {
        TargetCheck(figure: figure, backend: backend, target: "≤ \(format(limit))", value: value, met: value <= limit, detail: detail)
    }

    static func below(_ figure: String, _ backend: String, _ value: Double, _ limit: Double, unit: String, detail: String)
        -> TargetCheck
    {
        TargetCheck(
            figure: figure, backend: backend, target: "< \(format(limit)) \(unit)", value: value, met: value < limit, detail: detail)
    }

    static func format(_ value: Double) -> String { String(format: value >= 100 ? "%.0f" : "%.2f", value) }

    /// The targets as a Markdown table.
    static func markdown(_ checks: [TargetCheck]) -> String {
        var lines = ["| figure | backend | target | measured | met | from |", "| --- | --- | --- | ---: | --- | --- |"]
        for check in checks {
            lines.append(
                "| \(check.figure) | \(check.backend) | \(check.target) | \(format(check.value)) | \(check.met ? "yes" : "**no**") | \(check.detail) |"
            )
        }
        return lines.joined(separator: "\n")
    }
}

/// The PostgreSQL servers a run measures on: the ones `RESHARD_PG_1`, `RESHARD_PG_2` name, or
/// two started for the run with `scripts/postgres` (stopped by `stop()`).
final class BenchPostgres: Sendable {
    let servers: [PostgresEndpoint]
    private let startedIn: String?

    private init(servers: [PostgresEndpoint], startedIn: String?) {
        self.servers = servers
        self.startedIn = startedIn
    }

    /// The servers, or nil with the reason when none can be had.
    static func acquire() -> (BenchPostgres?, String?) {
        let named = PostgresScratch.servers()
        if !named.isEmpty { return (BenchPostgres(servers: named, startedIn: nil), nil) }
        let script = FileManager.default.currentDirectoryPath + "/scripts/postgres"
        guard FileManager.default.isExecutableFile(atPath: script) else {
            return (nil, "no RESHARD_PG_1 in the environment and no scripts/postgres here (run from the checkout)")
        }
        let folder = NSTemporaryDirectory() + "reshard-bench-pg-" + UUID().uuidString.prefix(8)
        say("starting two PostgreSQL servers in \(folder) (scripts/postgres) …")
        let (status, output) = BenchProcess.run(script, ["start", folder, "2"])
        guard status == 0 else {
            _ = BenchProcess.run(script, ["stop", folder])
            return (nil, "scripts/postgres start failed: \(output.suffix(400))")
        }
        var environment: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
        let servers = PostgresScratch.servers(environment: environment)
        guard servers.count >= 2 else {
            _ = BenchProcess.run(script, ["stop", folder])
            return (nil, "scripts/postgres printed no servers: \(output.suffix(400))")
        }
        return (BenchPostgres(servers: servers, startedIn: folder), nil)
    }

    /// Stops the servers this run started (named ones are left alone).
    func stop() {
        guard let startedIn else { return }
        _ = BenchProcess.run(FileManager.default.currentDirectoryPath + "/scripts/postgres", ["stop", startedIn])
    }
}

/// Runs helper programs (psql, pgcopydb, scripts/postgres) and collects their output.
enum BenchProcess {
    /// Runs `executable` to its end; returns the exit status and standard output and error.
    ///
    /// posix_spawn and waitpid, not Foundation's `Process`: on Linux its exit monitoring never
    /// saw scripts/postgres end (the child stayed a zombie), and its output goes through a file,
    /// not a pipe, because a server the program starts in the background inherits the descriptor
    /// and a pipe would never reach its end. The wait blocks one thread; the benchmarks run these
    /// alone, between measurements.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) -> (Int32, String) {
        let path = NSTemporaryDirectory() + "reshard-bench-output-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let variables = ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { return (-1, "\(executable): posix_spawn failed (\(spawned))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : -1, output)
    }

    /// The first of `candidates` that exists and is executable.
    static func find(_ name: String) -> String? {
        let folders =
            ["/usr/bin", "/usr/local/bin"]
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin" }
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Peak resident memory of this process, from Linux's `/proc/self`: the benchmarks serve in
/// process, so this is the serving process. `reset()` starts a new peak (Linux ≥ 4.0).
enum PeakMemory {
    static func reset() {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return }
        defer { try? handle.close() }
        try? handle.write(contentsOf: Data("5".utf8))
    }

    /// The peak since the last reset, bytes (0 where `/proc` is not readable).
    static var peakBytes: Int { field("VmHWM") }
    /// Resident now, bytes.
    static var currentBytes: Int { field("VmRSS") }

    private static func field(_ name: String) -> Int {
        // `/proc` files report a size of 0, so they are read to their end, not by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/status") else { return 0 }
        defer { try? handle.close() }
        let status = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            let number = line.dropFirst(name.count + 1).split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 0
            return number * 1_024
        }
        return 0
    }

    static func megabytes(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }
}

/// A logger for benchmark runs: warnings and worse only, so the tables stay readable.
func benchLogger() -> Logger {
    var logger = Logger(label: "reshard-bench")
    logger.logLevel = .warning
    return logger
}

/// Percentile of sorted `values` (nearest rank).
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(sorted.count - 1, max(0, rank))]
}

func seconds(since start: ContinuousClock.Instant) -> Double { (ContinuousClock.now - start).seconds }

/// The backends one run measures, and the PostgreSQL servers for them.
final class BenchEnvironment: Sendable {
    let backends: [ShardBackend]
    let servers: [PostgresEndpoint]
    /// Why PostgreSQL is not measured, when it was wanted and is not at hand.
    let skipped: String?
    private let postgres: BenchPostgres?

    init(choice: BackendChoice) throws {
        guard choice != .sqlite else {
            (backends, servers, skipped, postgres) = ([.sqlite], [], nil, nil)
            return
        }
        let (postgres, reason) = BenchPostgres.acquire()
        if let postgres {
            backends = choice == .all ? [.sqlite, .postgres] : [.postgres]
            (servers, skipped, self.postgres) = (postgres.servers, nil, postgres)
        } else if choice == .postgres {
            throw ValidationError("PostgreSQL is not available: \(reason ?? "unknown")")
        } else {
            say("PostgreSQL skipped: \(reason ?? "unknown")")
            (backends, servers, skipped, self.postgres) = ([.sqlite], [], reason, nil)
        }
    }

    /// Stops the servers this run started.
    func stop() { postgres?.stop() }

    /// pgcopydb, the PostgreSQL copy baseline: installed from Debian's packages when missing
    /// and this process may (root with apt-get); nil, with a notice, when it cannot be had.
    static let pgcopydb: String? = {
        if let found = BenchProcess.find("pgcopydb") { return found }
        guard getuid() == 0, let apt = BenchProcess.find("apt-get") else {
            say("pgcopydb is not installed (apt-get install pgcopydb): its baseline is skipped")
            return nil
        }
        say("installing pgcopydb from Debian's packages for the copy baseline …")
        let environment = ["DEBIAN_FRONTEND": "noninteractive"]
        _ = BenchProcess.run(apt, ["update", "-qq"], environment: environment)
        let (status, output) = BenchProcess.run(apt, ["install", "-y", "-qq", "pgcopydb"], environment: environment)
        if status != 0 { say("could not install pgcopydb (\(output.suffix(300))): its baseline is skipped") }
        return BenchProcess.find("pgcopydb")
    }()
}

/// Runs `body` on a fresh scratch cluster with the table `bench`, and removes the cluster
/// afterwards whatever happened.
func withBenchCluster<T>(
    _ prefix: String, backend: ShardBackend, shards: Int, servers: [PostgresEndpoint],
    _ body: (ScratchCluster, MigrationManager) async throws -> T
) async throws -> T {
    let cluster = try await ScratchCluster.make(
        prefix: "reshard-bench-" + prefix, backend: backend, shards: shards, servers: servers, metricsFactory: NOOPMetricsHandler.instance,
        logger: benchLogger())
    do {
        _ = try await cluster.router.createTable(name: benchTable, primaryKey: "id", shardKey: "id")
        let result = try await body(cluster, MigrationManager(router: cluster.router, metadata: cluster.metadata, logger: benchLogger()))
        await cluster.remove()
        return result
    } catch {
        await cluster.remove()
        throw error
    }
}
