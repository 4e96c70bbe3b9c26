import Foundation
import ReshardAPI
import ReshardClient
import Testing

/// The command line as a script uses it: a migration it watches that ends rolled back (or
/// failed) makes it exit non-zero, and `migrate status` without an id lists every migration.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CLIExitTests {
    static let token = "cli-exit-token-0123456789"
    static let auth = [("Authorization", "Bearer \(token)")]

    /// Runs `reshard` with `arguments`, its output in a file; returns the process once started.
    func launch(_ executable: String, _ arguments: [String], output: String) throws -> Process {
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    func waitForExit(_ process: Process, seconds: Int) async -> Bool {
        for _ in 0..<(seconds * 50) where process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        return !process.isRunning
    }

    @Test func aWatchedMigrationThatEndsRolledBackExitsNonZeroAndStatusListsAll() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-cli")
        defer { scratch.close() }
        let (_, port) = try await scratch.startServing()
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        _ = try await admin.request("POST", "/v1/tables", headers: Self.auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        for n in 0..<40 { _ = try await admin.request("PUT", "/v1/tables/kv/rows/k\(n)", body: Array(#"{"v":1}"#.utf8)) }

        let connection = ["--url", "http://127.0.0.1:\(port)", "--token", Self.token]
        let output = scratch.root + "/add-shard.out"
        let watcher = try launch(
            executable, ["migrate", "add-shard", "s5", "--gate", "before_copying"] + connection, output: output)
        var id: String?
        for _ in 0..<500 where id == nil {
            let listed = try await admin.request("GET", "/v1/migrations", headers: Self.auth).text
            id = listed.split(separator: "\"").drop { $0 != "id" }.dropFirst(2).first.map(String.init)
            try await Task.sleep(for: .milliseconds(20))
        }
        let migration = try #require(id)
        let rollback = try await admin.request("POST", "/v1/migrations/\(migration)/rollback", headers: Self.auth)
        #expect(rollback.status == 200, "\(rollback.text)")
        #expect(await waitForExit(watcher, seconds: 60), "the watch did not end")
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(watcher.terminationStatus != 0, "exited 0 after a rollback:\n\(printed.suffix(500))")
        #expect(printed.contains("ended rolled_back"), "\(printed.suffix(500))")
        // Its output went to a file: plain lines, never a carriage return or an escape.
        #expect(!printed.contains("\r") && !printed.contains("\u{1B}"), "\(printed.debugDescription.suffix(500))")

        // A done migration exits 0, and status without an id lists both.
        let done = try launch(
            executable,
            ["migrate", "add-shard", "s5", "--bake-ms", "0", "--canary-steps", "none", "--latency-factor", "0"] + connection,
            output: scratch.root + "/done.out")
        #expect(await waitForExit(done, seconds: 90), "the second migration did not end")
        let donePrinted = (try? String(contentsOfFile: scratch.root + "/done.out", encoding: .utf8)) ?? ""
        #expect(done.terminationStatus == 0, "\(donePrinted)")
        #expect(!donePrinted.contains("\r") && !donePrinted.contains("\u{1B}"), "\(donePrinted.debugDescription.suffix(500))")
        #expect(donePrinted.contains("migration") && donePrinted.contains(": done"), "\(donePrinted.suffix(500))")
        let list = try launch(executable, ["migrate", "status"] + connection, output: scratch.root + "/list.out")
        #expect(await waitForExit(list, seconds: 30))
        let listed = (try? String(contentsOfFile: scratch.root + "/list.out", encoding: .utf8)) ?? ""
        #expect(listed.contains("rolled_back") && listed.contains("done"), "\(listed)")
        #expect(listed.split(separator: "\n").count == 3, "\(listed)")

        // The report of the latest (the done one): text, a page with the chart, the chart alone.
        let html = scratch.root + "/report.html"
        let svg = scratch.root + "/report.svg"
        let report = try launch(
            executable, ["migrate", "report", "--html", html, "--svg", svg] + connection, output: scratch.root + "/report.out")
        #expect(await waitForExit(report, seconds: 30))
        let text = (try? String(contentsOfFile: scratch.root + "/report.out", encoding: .utf8)) ?? ""
        #expect(report.terminationStatus == 0, "\(text)")
        for label in ["migration", "took", "copied", "phases", "write pause #1", "verification", "cleanup", "foreground p99"] {
            #expect(text.contains("  \(label)"), "no \(label) in the report:\n\(text)")
        }
        #expect(text.contains("add_shard by cdc_backfill, done"), "\(text)")
        // Every row the plan expected was copied: "N of N rows".
        let copied = text.split(separator: "\n").first { $0.contains("  copied") }.map(String.init) ?? ""
        let counts = copied.split(separator: " ").compactMap { Int($0) }
        #expect(counts.count >= 2 && counts[0] == counts[1] && counts[0] > 0, "\(copied)")
        let page = (try? String(contentsOfFile: html, encoding: .utf8)) ?? ""
        #expect(page.hasPrefix("<!doctype html>") && page.contains("<svg") && page.contains("polyline") && page.contains("Phase timeline"))
        #expect(page.contains("cleaning_up") && !page.contains("src=") && !page.contains("href="), "self-contained: nothing fetched")
        let chart = (try? String(contentsOfFile: svg, encoding: .utf8)) ?? ""
        #expect(chart.hasPrefix("<svg") && chart.hasSuffix("</svg>") && chart.contains("<title>copying</title>"))
        let json = try launch(executable, ["migrate", "report", "--json"] + connection, output: scratch.root + "/report.json")
        #expect(await waitForExit(json, seconds: 30))
        let document = try API.decode(API.MigrationReport.self, from: Data(contentsOf: URL(fileURLWithPath: scratch.root + "/report.json")))
        #expect(document.migration.phase == "done" && document.bytesCopied > 0 && !document.router.isEmpty)
        let unknown = try launch(executable, ["migrate", "report", "nope"] + connection, output: scratch.root + "/unknown.out")
        #expect(await waitForExit(unknown, seconds: 30))
        #expect(unknown.terminationStatus != 0)
    }

    /// The read-step options: a dry run of `write_new_read_old` lists `serving_reads`, a step list
    /// that is not numbers is refused before anything is sent, and one out of bounds by the server.
    @Test func readStepsAreParsedAndRefusedClearly() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-cli")
        defer { scratch.close() }
        let (_, port) = try await scratch.startServing()
        let connection = ["--url", "http://127.0.0.1:\(port)", "--token", Self.token]
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        _ = try await admin.request("POST", "/v1/shards", headers: Self.auth, body: Array(#"{"id":"s5"}"#.utf8))
        func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            let output = scratch.root + "/read-steps.out"
            let process = try launch(executable, ["migrate", "add-shard", "s5"] + arguments + connection, output: output)
            #expect(await waitForExit(process, seconds: 30))
            return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        let dry = try await run(["--strategy", "write_new_read_old", "--read-steps", "10,100", "--dry-run"])
        #expect(dry.status == 0 && dry.output.contains("serving_reads"), "\(dry.output)")
        for steps in ["10,x", "10,,100", ""] {
            let refused = try await run(["--strategy", "write_new_read_old", "--read-steps", steps])
            #expect(refused.status != 0 && refused.output.contains("--read-steps takes"), "\(steps): \(refused.output)")
        }
        let wrongStrategy = try await run(["--read-steps", "10,100", "--dry-run"])
        #expect(wrongStrategy.status != 0 && wrongStrategy.output.contains("read_steps"), "\(wrongStrategy.output)")
        let migrations = try await admin.request("GET", "/v1/migrations", headers: Self.auth).text
        #expect(migrations.contains(#""migrations":[]"#), "nothing started: \(migrations)")
    }

    /// `reshard load` asks a live router and prints its table, or its JSON; bad options are
    /// refused before anything is sent.
    @Test func loadPrintsTheRoutersLoadAndRefusesBadOptions() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-cli")
        defer { scratch.close() }
        let (_, port) = try await scratch.startServing()
        let connection = ["--url", "http://127.0.0.1:\(port)", "--token", Self.token]
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        _ = try await admin.request("POST", "/v1/tables", headers: Self.auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        for n in 0..<20 { _ = try await admin.request("PUT", "/v1/tables/kv/rows/k\(n)", body: Array(#"{"v":1}"#.utf8)) }
        func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            let output = scratch.root + "/load.out"
            let process = try launch(executable, ["load"] + arguments + connection, output: output)
            #expect(await waitForExit(process, seconds: 30))
            return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        let table = try await run(["--propose"])
        #expect(table.status == 0 && table.output.contains("SHARD") && table.output.contains("proposal: none"), "\(table.output)")
        let json = try await run(["--json", "--windows", "1"])
        #expect(json.status == 0 && json.output.contains(#""routers""#) && json.output.contains(#""finding""#), "\(json.output)")
        for bad in [["--signal", "rows"], ["--windows", "16"], ["--top", "0"], ["--windows", "-1"]] {
            let refused = try await run(bad)
            #expect(refused.status != 0 && refused.output.contains("Error:"), "\(bad): \(refused.output)")
        }
    }

    /// Runs `reshard` with `arguments` to its end; standard output and error apart, so a
    /// `--json` output can be read as the one document it must be.
    func run(_ executable: String, _ arguments: [String], in folder: String) async throws -> (status: Int32, out: String, err: String) {
        let out = folder + "/run.out"
        let err = folder + "/run.err"
        for file in [out, err] { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        #expect(await waitForExit(process, seconds: 30), "\(arguments) did not end")
        return (
            process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        )
    }

    /// What a script uses: the version, completions, shards, the migration list, the status and
    /// a running migration's settings, each `--json` one API document on standard output.
    @Test func scriptsGetTheVersionCompletionsAndOneJSONDocumentPerCommand() async throws {
        let executable = try #require(ServerProcess.executable(), "no reshard executable: swift build --build-tests")
        let scratch = try ServerScratch(executable: executable, token: Self.token, prefix: "reshard-cli")
        defer { scratch.close() }
        let version = try await run(executable, ["--version"], in: scratch.root)
        #expect(version.status == 0 && version.out == BuildInfo.version + "\n", "\(version)")
        for shell in ["bash", "zsh", "fish"] {
            let script = try await run(executable, ["--generate-completion-script", shell], in: scratch.root)
            #expect(script.status == 0 && script.out.contains("reshard") && script.out.contains("migrate"), "\(shell): \(script.err)")
        }

        let (_, port) = try await scratch.startServing()
        let connection = ["--url", "http://127.0.0.1:\(port)", "--token", Self.token]
        let admin = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await admin.close() } }
        _ = try await admin.request("POST", "/v1/tables", headers: Self.auth, body: Array(#"{"name":"kv","primary_key":"k"}"#.utf8))
        for n in 0..<40 { _ = try await admin.request("PUT", "/v1/tables/kv/rows/k\(n)", body: Array(#"{"v":1}"#.utf8)) }

        let added = try await run(executable, ["shard", "add", "s5", "--json"] + connection, in: scratch.root)
        #expect(added.status == 0, "\(added)")
        #expect(try API.decode(API.ShardCreated.self, from: Data(added.out.utf8)).id == "s5")
        let again = try await run(executable, ["shard", "add", "s5"] + connection, in: scratch.root)
        #expect(again.status != 0 && again.err.contains("shard_exists"), "\(again)")
        let shards = try await run(executable, ["shard", "list", "--json"] + connection, in: scratch.root)
        let listed = try API.decode(API.ShardList.self, from: Data(shards.out.utf8))
        #expect(listed.shards.map(\.id).contains("s5") && listed.shards.allSatisfy { $0.changeCapture == "triggers" }, "\(shards.out)")

        let idle = try await run(executable, ["status", "--json"] + connection, in: scratch.root)
        let idleDocument = try #require(try JSONSerialization.jsonObject(with: Data(idle.out.utf8)) as? [String: Any], "\(idle)")
        #expect(idleDocument["active_migration"] is NSNull)
        let noneYet = try await run(executable, ["migrate", "list", "--json"] + connection, in: scratch.root)
        #expect(try API.decode(API.MigrationList.self, from: Data(noneYet.out.utf8)).migrations.isEmpty, "\(noneYet)")

        let started = try await run(
            executable,
            ["migrate", "add-shard", "s5", "--gate", "before_copying", "--max-rows-per-second", "300", "--detach"] + connection,
            in: scratch.root)
        #expect(started.status == 0, "\(started)")
        let list = try await run(executable, ["migrate", "list", "--json"] + connection, in: scratch.root)
        let migration = try #require(try API.decode(API.MigrationList.self, from: Data(list.out.utf8)).migrations.first, "\(list)")
        #expect(migration.startedMs != nil && migration.endedMs == nil)
        let table = try await run(executable, ["migrate", "list"] + connection, in: scratch.root)
        #expect(table.status == 0 && table.out.contains(migration.id) && table.out.contains("STARTED"), "\(table)")

        let status = try await run(executable, ["status", "--json"] + connection, in: scratch.root)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(status.out.utf8)) as? [String: Any], "\(status)")
        #expect((document["active_migration"] as? [String: Any])?["id"] as? String == migration.id, "\(status.out)")
        let text = try await run(executable, ["status"] + connection, in: scratch.root)
        #expect(text.out.contains("migration  \(migration.id) (add_shard)") && text.out.contains("capture    "), "\(text.out)")

        let set = try await run(
            executable, ["migrate", "set", migration.id, "--max-rows-per-second", "700", "--bake-ms", "1000", "--json"] + connection,
            in: scratch.root)
        let changed = try API.decode(API.MigrationSettingsChanged.self, from: Data(set.out.utf8))
        #expect(set.status == 0 && changed.maxRowsPerSecond == 700 && changed.bakeMs == 1_000, "\(set)")
        for bad in [["--max-rows-per-second", "0"], ["--bake-ms", "-1"], ["--max-rows-per-second", "many"], []] {
            let refused = try await run(executable, ["migrate", "set", migration.id] + bad + connection, in: scratch.root)
            #expect(refused.status != 0 && refused.out.isEmpty && !refused.err.isEmpty, "\(bad): \(refused)")
        }
        let detail = try await run(executable, ["migrate", "status", migration.id, "--json"] + connection, in: scratch.root)
        guard case .detail(let shown) = try API.decode(API.MigrationStatus.self, from: Data(detail.out.utf8)) else {
            Issue.record("no detail: \(detail)")
            return
        }
        #expect(shown.throttle.maxRowsPerSecond == 700 && shown.bakeMs == 1_000, "\(detail.out)")
        let both = try await run(executable, ["migrate", "status", "--watch", "--json"] + connection, in: scratch.root)
        #expect(both.status != 0 && both.out.isEmpty, "\(both)")

        let rollback = try await run(executable, ["migrate", "rollback", migration.id, "--json"] + connection, in: scratch.root)
        #expect(try API.decode(API.CommandResult.self, from: Data(rollback.out.utf8)).id == migration.id, "\(rollback)")
    }
}
