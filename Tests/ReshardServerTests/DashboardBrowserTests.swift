import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ReshardAPI
import ReshardClient
import ReshardEngine
import ReshardServer
import Testing

/// Headless Chromium (Debian's `chromium`) loads the dashboard from a live server while an
/// add_shard migration runs under load, at three points: held before its copy, held before its
/// cutover, and done. Each time it saves a screenshot and the page's DOM after the scripts ran,
/// and the DOM must show the phase, the progress and the map generation moving on.
///
/// Skipped where Chromium is not installed, unless `RESHARD_REQUIRE_CHROMIUM=1` (scripts/test
/// installs it and sets that), so a missing browser fails CI instead of passing quietly.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DashboardBrowserTests {
    static let token = "browser-token"

    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// What the page showed at one point.
    struct Shown {
        var phase: String
        var progress: Double
        var generation: UInt64
        var dom: String
    }

    @Test func theDashboardFollowsALiveMigration() async throws {
        guard let chromium = Self.chromium else {
            #expect(ProcessInfo.processInfo.environment["RESHARD_REQUIRE_CHROMIUM"] != "1", "Chromium is required but not installed")
            return
        }
        let shots = FileManager.default.temporaryDirectory.appendingPathComponent("reshard-dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let registry = PrometheusCollectorRegistry()
        let cluster = try await EmbeddedCluster.temporary(
            prefix: "reshard-dashboard", shards: 3, metricsFactory: PrometheusMetricsFactory(registry: registry),
            logger: Logger(label: "test"))
        defer { cluster.remove() }
        let router = cluster.router
        _ = try await router.createTable(name: "users", primaryKey: "id", shardKey: "id")
        for index in 0..<600 { _ = try await router.put(table: "users", pk: "u\(index)", body: Array(#"{"n":\#(index)}"#.utf8)) }
        let configuration = ServerConfiguration(adminToken: Self.token, newShardLocation: cluster.newShardLocation)
        let migrations = MigrationManager(router: router, metadata: cluster.metadata, logger: Logger(label: "test"))
        let app = Application(
            router: ReshardApplication.makeRouter(
                shardRouter: router, configuration: configuration, registry: registry, migrations: migrations))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
            let auth = [("Authorization", "Bearer \(Self.token)"), ("Content-Type", "application/json")]
            // Writers, deleters and readers through the same server the browser watches.
            let load = Task { try await Self.traffic(port: port) }
            defer { load.cancel() }

            let shard = try await admin.request("POST", "/v1/shards", headers: auth, body: Array(#"{"id":"s4"}"#.utf8))
            #expect(shard.status == 201, "\(shard.text)")
            let body =
                #"{"kind":"add_shard","shard":"s4","options":{"gates":["before_copying","before_cutover"],"bake_ms":0,"canary_step_ms":200}}"#
            let created = try await admin.request("POST", "/v1/migrations", headers: auth, body: Array(body.utf8))
            #expect(created.status == 202, "\(created.text)")
            let id = try #require(try JSONSerialization.jsonObject(with: Data(created.body)) as? [String: Any])["id"] as? String ?? ""

            try await Self.waitForGate("before_copying", id: id, admin: admin)
            let before = try await Self.look(chromium, port: port, name: "1-before-copy", into: shots)
            try await Self.approve(id, admin: admin)
            try await Self.waitForGate("before_cutover", id: id, admin: admin)
            let held = try await Self.look(chromium, port: port, name: "2-before-cutover", into: shots)
            try await Self.approve(id, admin: admin)
            try await Self.waitForPhase("done", id: id, admin: admin)
            try await Task.sleep(for: .milliseconds(1_100))
            let done = try await Self.look(chromium, port: port, name: "3-done", into: shots)

            #expect(
                before.phase != held.phase && held.phase != done.phase && done.phase == "done",
                "\(before.phase) \(held.phase) \(done.phase)")
            #expect(before.progress < held.progress && held.progress == 100 && done.progress == 100, "\(before.progress) \(held.progress)")
            #expect(before.generation == 1 && held.generation == 1 && done.generation == 2)
            // The map shows the moving ranges while the migration runs, and the page's tables filled in.
            #expect(before.dom.contains("class=\"moving\"") && !done.dom.contains("class=\"moving\""))
            for shown in [before, held, done] {
                #expect(shown.dom.contains("<td>s1</td>") && shown.dom.contains("data-state=\"up\""), "\(shown.dom.prefix(400))")
                #expect(shown.dom.contains("polyline"), "the latency chart drew its lines")
            }
            #expect(held.dom.contains("id=\"gate\" class=\"gate\">") || held.dom.contains("before_cutover"))
            #expect(done.dom.contains(id), "the history lists the migration")
            for name in ["1-before-copy", "2-before-cutover", "3-done"] {
                let size =
                    (try? FileManager.default.attributesOfItem(atPath: shots.appendingPathComponent("\(name).png").path)[.size] as? Int)
                    ?? 0
                #expect(size > 10_000, "screenshot \(name) is \(size) bytes")
            }
            await admin.close()
            load.cancel()
            _ = try? await load.value
        }
        // Kept for a person to look at when RESHARD_KEEP_SCREENSHOTS names a folder.
        if let keep = ProcessInfo.processInfo.environment["RESHARD_KEEP_SCREENSHOTS"], !keep.isEmpty {
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            for name in ["1-before-copy", "2-before-cutover", "3-done"] {
                try? FileManager.default.removeItem(atPath: "\(keep)/\(name).png")
                try? FileManager.default.copyItem(atPath: shots.appendingPathComponent("\(name).png").path, toPath: "\(keep)/\(name).png")
            }
        }
        try? FileManager.default.removeItem(at: shots)
        try? FileManager.default.removeItem(at: Self.profile)
    }

    /// A bounded mix of writes, deletes and reads until cancelled (at most 20,000 requests).
    static func traffic(port: Int) async throws {
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await connection.close() } }
        for index in 0..<20_000 where !Task.isCancelled {
            let key = "u\(index % 800)"
            switch index % 10 {
            case 0: _ = try await connection.request("DELETE", "/v1/tables/users/rows/\(key)")
            case 1...4:
                _ = try await connection.request(
                    "PUT", "/v1/tables/users/rows/\(key)", headers: [("Content-Type", "application/json")],
                    body: Array(#"{"w":\#(index)}"#.utf8))
            default: _ = try await connection.request("GET", "/v1/tables/users/rows/\(key)")
            }
            try await Task.sleep(for: .milliseconds(4))
        }
    }

    struct NeverReached: Error, CustomStringConvertible {
        var description: String
    }

    /// Waits (at most a minute) until the migration's status contains `fragment`; throws
    /// otherwise, so a migration that went elsewhere fails the test instead of holding it.
    static func waitFor(_ fragment: String, id: String, admin: HTTPConnection) async throws {
        var last = ""
        for _ in 0..<600 {
            let status = try await admin.request("GET", "/v1/migrations/\(id)", headers: [("Authorization", "Bearer \(token)")])
            if status.text.contains(fragment) { return }
            last = status.text
            try await Task.sleep(for: .milliseconds(100))
        }
        throw NeverReached(description: "the migration's status never showed \(fragment): \(last.prefix(600))")
    }

    static func waitForGate(_ gate: String, id: String, admin: HTTPConnection) async throws {
        try await waitFor(#""gate":"\#(gate)""#, id: id, admin: admin)
    }

    static func waitForPhase(_ phase: String, id: String, admin: HTTPConnection) async throws {
        try await waitFor(#""phase":"\#(phase)""#, id: id, admin: admin)
    }

    static func approve(_ id: String, admin: HTTPConnection) async throws {
        let response = try await admin.request("POST", "/v1/migrations/\(id)/approve", headers: [("Authorization", "Bearer \(token)")])
        #expect(response.status == 200, "\(response.text)")
    }

    /// Loads the page in Chromium twice (a screenshot, then the DOM after the scripts ran) and
    /// reads the phase, progress and generation the page shows.
    static func look(_ chromium: String, port: Int, name: String, into folder: URL) async throws -> Shown {
        let url = "http://127.0.0.1:\(port)/"
        let png = folder.appendingPathComponent("\(name).png").path
        _ = try await run(chromium, browserFlags + ["--window-size=1280,2200", "--screenshot=\(png)", url])
        let dom = try await run(chromium, browserFlags + ["--dump-dom", url])
        func attribute(_ id: String, _ name: String) -> String {
            guard let element = dom.range(of: "id=\"\(id)\"") else { return "" }
            let tail = dom[element.upperBound...].prefix { $0 != ">" }
            guard let start = tail.range(of: "\(name)=\"") else { return "" }
            return String(tail[start.upperBound...].prefix { $0 != "\"" })
        }
        return Shown(
            phase: attribute("phase", "data-phase"), progress: Double(attribute("progress", "data-progress")) ?? -1,
            generation: UInt64(attribute("generation", "data-generation")) ?? 0, dom: dom)
    }

    /// Headless, no GPU, no first-run chatter; the sandbox needs user namespaces a root
    /// container lacks. The virtual time budget lets the page's first polls finish.
    static let profile = FileManager.default.temporaryDirectory.appendingPathComponent("reshard-chromium-\(UUID().uuidString)")
    static let browserFlags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
        "--virtual-time-budget=3000", "--user-data-dir=\(profile.path)",
    ]

    /// Runs Chromium to its end (killed after 60 s) with its output in a file, so no thread
    /// blocks on a pipe while the server it looks at needs the cooperative pool.
    static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("reshard-chromium-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }
}
