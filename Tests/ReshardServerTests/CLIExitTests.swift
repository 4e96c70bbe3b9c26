import Foundation
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

        // A done migration exits 0, and status without an id lists both.
        let done = try launch(
            executable,
            ["migrate", "add-shard", "s5", "--bake-ms", "0", "--canary-steps", "none", "--latency-factor", "0"] + connection,
            output: scratch.root + "/done.out")
        #expect(await waitForExit(done, seconds: 90), "the second migration did not end")
        #expect(done.terminationStatus == 0, "\((try? String(contentsOfFile: scratch.root + "/done.out", encoding: .utf8)) ?? "")")
        let list = try launch(executable, ["migrate", "status"] + connection, output: scratch.root + "/list.out")
        #expect(await waitForExit(list, seconds: 30))
        let listed = (try? String(contentsOfFile: scratch.root + "/list.out", encoding: .utf8)) ?? ""
        #expect(listed.contains("rolled_back") && listed.contains("done"), "\(listed)")
        #expect(listed.split(separator: "\n").count == 3, "\(listed)")
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
}
