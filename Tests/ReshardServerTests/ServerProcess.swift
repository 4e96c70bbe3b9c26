import Foundation
import ReshardClient
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A real `reshard serve` child process on loopback, its stderr in a log file. Every wait is
/// bounded; `killNow()` is safe to call at any time (also from a `defer` when a check failed).
final class ServerProcess: Sendable {
    let process: Process
    let logPath: String

    /// The built `reshard` executable: next to the test bundle, else in `.build/debug` of the package.
    static func executable(file: String = #filePath) -> String? {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("reshard")
        let package = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [besideTests.path, package.appendingPathComponent(".build/debug/reshard").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts `reshard serve` with `arguments` (after those every test needs: loopback, `port`,
    /// the admin token); `crashAt` sets `RESHARD_CRASH_AT`, and nothing else of the kind leaks in
    /// from the test's own environment.
    init(executable: String, arguments: [String], port: Int, token: String, crashAt: String?, logPath: String) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments =
            ["serve", "--host", "127.0.0.1", "--port", String(port), "--admin-token", token, "--log-level", "info"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["RESHARD_CRASH_AT"] = crashAt
        environment["RESHARD_ADMIN_TOKEN"] = nil
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try process.run()
        self.process = process
        self.logPath = logPath
    }

    /// What the process wrote to stderr so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The last lines of the log, for failure messages.
    var logTail: String { log.split(separator: "\n").suffix(15).joined(separator: "\n") }

    /// The port named by the "reshard is serving" line, once it appears (nil if the process
    /// exits or the bound passes first).
    func boundPort() async -> Int? {
        for _ in 0..<1_500 {
            if let line = log.split(separator: "\n").first(where: { $0.contains("reshard is serving") }),
                let range = line.range(of: "address=http://127.0.0.1:")
            {
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Waits until `GET /healthz` answers 200.
    func waitUntilHealthy(port: Int) async -> Bool {
        for _ in 0..<1_500 {
            if !process.isRunning { return false }
            if let connection = try? await HTTPConnection.connect(host: "127.0.0.1", port: port, timeout: .seconds(2)) {
                let response = try? await connection.request("GET", "/healthz", timeout: .seconds(5))
                await connection.close()
                if response?.status == 200 { return true }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Waits (15 s at most) until the log contains `text`; false if the process exits first.
    func waitForLog(_ text: String) async -> Bool {
        for _ in 0..<1_500 {
            if log.contains(text) { return true }
            if !process.isRunning { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Waits until the process has exited; false if it is still running after `seconds`.
    func waitForExit(seconds: Int) async -> Bool {
        for _ in 0..<(seconds * 50) {
            if !process.isRunning { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !process.isRunning
    }

    /// Asks the server to stop (SIGTERM) and waits; SIGKILL if it does not stop in time.
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        if !(await waitForExit(seconds: 20)) {
            Issue.record("reshard serve did not stop on SIGTERM within 20 s; killing it")
            killNow()
        }
    }

    /// SIGKILL, then reap (a no-op once the process has exited).
    func killNow() {
        guard process.isRunning else { return }
        _ = kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// One test's temporary folder and the `reshard serve` processes started on its data folder;
/// `close()` kills whatever still runs and deletes the folder.
final class ServerScratch {
    let executable: String
    let token: String
    let root: String
    private var servers: [ServerProcess] = []

    init(executable: String, token: String, prefix: String = "reshard-crash") throws {
        self.executable = executable
        root = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString
        self.token = token
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// The data folder every server of this test shares.
    var data: String { root + "/data" }

    /// Starts an embedded server (four SQLite shards) on the data folder.
    func start(port: Int, crashAt: String?) throws -> ServerProcess {
        try start(["--data", data, "--shards", "4"], port: port, crashAt: crashAt)
    }

    /// Starts a server with `arguments`, its log in `serve-N.log`.
    func start(_ arguments: [String], port: Int, crashAt: String? = nil) throws -> ServerProcess {
        let log = root + "/serve-\(servers.count + 1).log"
        let server = try ServerProcess(
            executable: executable, arguments: arguments, port: port, token: token, crashAt: crashAt, logPath: log)
        servers.append(server)
        return server
    }

    /// Starts a server on the data folder (an embedded one unless `arguments` say otherwise) and
    /// waits until it answers; fails the test with its log if it does not.
    func startServing(_ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> (
        server: ServerProcess, port: Int
    ) {
        let server = try start(["--data", data] + arguments, port: 0)
        let port = try #require(await server.boundPort(), "serve did not start:\n\(server.logTail)", sourceLocation: sourceLocation)
        try #require(await server.waitUntilHealthy(port: port), "serve is not healthy:\n\(server.logTail)", sourceLocation: sourceLocation)
        return (server, port)
    }

    func close() {
        for server in servers { server.killNow() }
        // Shard stores the test opened close their SQLite files from a background task (their WAL
        // checkpointer) shortly after release; a removal racing that can leave directories behind.
        for _ in 0..<20 where FileManager.default.fileExists(atPath: root) {
            try? FileManager.default.removeItem(atPath: root)
            if FileManager.default.fileExists(atPath: root) { usleep(50_000) }
        }
    }
}
