import Foundation
import Testing

@testable import reshard

/// `reshard serve`'s settings: flags, then RESHARD_… variables, then the config file, then the
/// defaults; every source checked alike, and the README's table made from the same list.
@Suite struct ServeSettingsTests {
    func file(_ json: String) throws -> String {
        let path = NSTemporaryDirectory() + "reshard-settings-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func flagsWinOverTheEnvironmentWhichWinsOverTheFile() throws {
        let path = try file(
            #"{"port": 9001, "host": "10.0.0.1", "log_level": "debug", "shards": {"s2": "sqlite:b.sqlite", "s1": "sqlite:a.sqlite"}, "auto_rebalance": true, "webhooks": ["http://127.0.0.1:9/h"]}"#
        )
        defer { try? FileManager.default.removeItem(atPath: path) }
        let serve = try Serve.parse(["--config", path, "--port", "9000", "--no-auto-rebalance"])
        let environment = [
            "RESHARD_PORT": "9002", "RESHARD_HOST": "127.0.0.2", "RESHARD_MAX_CONNECTIONS": "12", "RESHARD_NOTIFICATIONS": "off",
        ]
        let settings = try serve.settings(environment: environment)
        #expect(settings.port == 9000)
        #expect(settings.host == "127.0.0.2")
        #expect(settings.maxConnections == 12)
        #expect(settings.notifications == false)
        #expect(settings.logLevel == "debug")
        #expect(settings.shards == ["s1=sqlite:a.sqlite", "s2=sqlite:b.sqlite"])
        #expect(settings.autoRebalance == false)
        #expect(settings.webhooks == ["http://127.0.0.1:9/h"])
        #expect(settings.data == "./reshard-data" && settings.refreshMillis == 1_000)
        // RESHARD_CONFIG names the file when --config does not.
        #expect(try Serve.parse([]).settings(environment: ["RESHARD_CONFIG": path]).port == 9001)
        let (_, origins) = try ServeSettings.resolve(
            flags: ["port": .int(1)], environment: ["RESHARD_HOST": "::1"], file: ["log_level": .string("error")])
        #expect(origins == ["port": .flag, "host": .environment, "log_level": .file])
    }

    @Test func badValuesFromAnySourceNameTheSetting() throws {
        let cases: [([String], [String: String], String?, String)] = [
            (["--port", "70000"], [:], nil, "port"),
            ([], ["RESHARD_PORT": "70000"], nil, "port"),
            ([], ["RESHARD_PORT": "+80"], nil, "RESHARD_PORT"),
            ([], ["RESHARD_PORT": "18446744073709551616"], nil, "RESHARD_PORT"),
            ([], ["RESHARD_AUTO_REBALANCE": "maybe"], nil, "RESHARD_AUTO_REBALANCE"),
            ([], ["RESHARD_PORT": "-1"], nil, "port"),
            ([], ["RESHARD_MAX_CONNECTIONS": "-9223372036854775808"], nil, "max_connections"),
            ([], ["RESHARD_HOST": "127.0.0.1\n"], nil, "host"),
            ([], ["RESHARD_DATA_TOKEN": "0123456789abcdef\u{0}"], nil, "data_token"),
            ([], ["RESHARD_DATA_TOKEN": "0123456789 abcdef"], nil, "data_token"),
            ([], ["RESHARD_WEBHOOKS": "http://127.0.0.1:9/a,ftp://x"], nil, "webhook"),
            ([], ["RESHARD_LOG_LEVEL": "loud"], nil, "log level"),
            ([], ["RESHARD_DATA_TOKEN": "short"], nil, "data_token"),
            ([], ["RESHARD_TLS_CERT_FILE": "/x.pem"], nil, "tls_key_file"),
            ([], ["RESHARD_SHARDS": "nonsense"], nil, "shard"),
            ([], [:], #"{"prot": 1}"#, "unknown member \"prot\""),
            ([], [:], #"{"port": "7420"}"#, "\"port\" must be an integer"),
            ([], [:], #"{"port": 7420.5}"#, "\"port\""),
            ([], [:], #"{"notifications": 1}"#, "\"notifications\" must be true or false"),
            ([], [:], #"[1]"#, "not a JSON object"),
            ([], [:], "{\"host\": \"a\u{0}b\"}", "host"),
        ]
        for (arguments, environment, json, expected) in cases {
            let path = try json.map(file)
            defer { path.map { try? FileManager.default.removeItem(atPath: $0) } }
            do {
                // Parsing checks the flags (and this process's environment, which sets none of these).
                let serve = try Serve.parse(arguments + (path.map { ["--config", $0] } ?? []))
                _ = try serve.settings(environment: environment)
                Issue.record("accepted \(arguments) \(environment) \(json ?? "")")
            } catch {
                #expect("\(error)".contains(expected) || Serve.message(for: error).contains(expected), "\(Serve.message(for: error))")
            }
        }
        #expect(throws: (any Error).self) { try Serve.parse(["--config", "/nonexistent/reshard.json"]).settings(environment: [:]) }
    }

    @Test func theDeployExampleConfigIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try ServeSettings.file(root.appendingPathComponent("deploy/systemd/reshard.json").path)
        let (settings, origins) = try ServeSettings.resolve(flags: [:], environment: ["RESHARD_DATA": "/var/lib/reshard"], file: file)
        #expect(settings.shards.count == 2 && settings.metadata?.hasPrefix("postgres://") == true)
        #expect(settings.tlsCertFile != nil && settings.tlsKeyFile != nil && settings.host == "0.0.0.0")
        #expect(origins["data"] == .environment && origins["port"] == .file)
    }

    @Test func theReadmeTableIsTheSettingsList() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(ServeSettings.markdownTable()), "README.md's settings table differs; paste ServeSettings.markdownTable()")
        #expect(Set(ServeSettings.all.map(\.key)).count == ServeSettings.all.count)
        // Every setting's flag is one `reshard serve` takes.
        let help = Serve.helpMessage()
        for setting in ServeSettings.all {
            let flag = setting.flag.replacingOccurrences(of: "--[no-]", with: "--")
            #expect(help.contains(flag), "\(flag) is not in serve --help")
        }
    }
}
