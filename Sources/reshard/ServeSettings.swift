import Foundation
import Logging
import ReshardCore
import ReshardEngine
import ReshardServer

/// Everything `reshard serve` is told, from one model read in this order: command-line flags,
/// then environment variables (`RESHARD_…`), then a JSON config file (`--config` or
/// `$RESHARD_CONFIG`), then the defaults. Each setting has one name in each place
/// (`Setting.all`, which the README's table is made from), and a value from the environment or
/// the file is checked exactly as one from a flag.
struct ServeSettings: Equatable {
    var data = "./reshard-data"
    var embeddedShards = 4
    var metadata: String?
    /// `ID=URL` each.
    var shards: [String] = []
    var name: String?
    var refreshMillis = 1_000
    var notifications = true
    var host = "127.0.0.1"
    var port = 7420
    var adminToken: String?
    var dataToken: String?
    var logLevel = "info"
    var idleTimeoutMillis = 60_000
    var requestTimeoutMillis = 30_000
    var maxConnections = 1_024
    var shutdownGraceMillis = 10_000
    var autoRebalance = false
    var autoRebalanceSignal = "requests"
    var autoRebalanceGates: [String] = []
    var webhooks: [String] = []
    var tlsCertFile: String?
    var tlsKeyFile: String?

    /// A value as one place gives it.
    enum Value: Equatable {
        case string(String)
        case int(Int)
        case bool(Bool)
        case list([String])
    }

    /// What a setting holds.
    enum Kind {
        case string, int, bool, list
    }

    /// One setting and its names.
    struct Setting: Sendable {
        /// The config file's member.
        let key: String
        /// The command-line flag (without a value).
        let flag: String
        let kind: Kind
        let defaultText: String
        let help: String
        let apply: @Sendable (inout ServeSettings, Value) -> Void

        /// The environment variable.
        var environment: String { "RESHARD_" + key.uppercased() }
    }

    /// Where a setting's value came from, for messages.
    enum Source: String {
        case flag, environment, file
    }

    /// Resolves every setting: flags, then `environment`, then the file's members, then defaults.
    static func resolve(flags: [String: Value], environment: [String: String], file: [String: Value]) throws -> (
        ServeSettings, origins: [String: Source]
    ) {
        var settings = ServeSettings()
        var origins: [String: Source] = [:]
        let known = Set(all.map(\.key))
        if let unknown = file.keys.sorted().first(where: { !known.contains($0) }) {
            throw SettingsError(
                "the config file has an unknown member \"\(unknown.prefix(60))\"; members are \(all.map(\.key).joined(separator: ", "))")
        }
        for setting in all {
            if let value = flags[setting.key] {
                setting.apply(&settings, value)
                origins[setting.key] = .flag
            } else if let text = environment[setting.environment] {
                setting.apply(&settings, try parse(text, as: setting.kind, name: setting.environment))
                origins[setting.key] = .environment
            } else if let value = file[setting.key] {
                guard value.kind == setting.kind else {
                    throw SettingsError("the config file's \"\(setting.key)\" must be \(setting.kind.described)")
                }
                setting.apply(&settings, value)
                origins[setting.key] = .file
            }
        }
        try settings.validate()
        return (settings, origins)
    }

    /// An environment variable's text as a `kind` value: integers in decimal, booleans as
    /// true/false/1/0/yes/no/on/off, lists separated by commas.
    static func parse(_ text: String, as kind: Kind, name: String) throws -> Value {
        switch kind {
        case .string:
            return .string(text)
        case .int:
            guard let number = Int(text), String(number) == text else {
                throw SettingsError("\(name) must be an integer; got \(text.prefix(40))")
            }
            return .int(number)
        case .bool:
            switch text.lowercased() {
            case "1", "true", "yes", "on": return .bool(true)
            case "0", "false", "no", "off": return .bool(false)
            default: throw SettingsError("\(name) must be true or false; got \(text.prefix(40))")
            }
        case .list:
            return .list(text.split(separator: ",", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) })
        }
    }

    /// The members of a JSON config file. `shards` may be an object of ID to URL.
    static func file(_ path: String) throws -> [String: Value] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SettingsError("cannot read the config file \(path): \(error.localizedDescription)")
        }
        /// One member, of whichever kind JSON gives (JSONDecoder tells true from 1, unlike NSNumber).
        enum Member: Decodable {
            case bool(Bool), int(Int), string(String), list([String]), map([String: String]), other

            init(from decoder: any Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let flag = try? value.decode(Bool.self) {
                    self = .bool(flag)
                } else if let number = try? value.decode(Int.self) {
                    self = .int(number)
                } else if let text = try? value.decode(String.self) {
                    self = .string(text)
                } else if let list = try? value.decode([String].self) {
                    self = .list(list)
                } else if let map = try? value.decode([String: String].self) {
                    self = .map(map)
                } else {
                    self = .other
                }
            }
        }
        let object: [String: Member]
        do {
            object = try JSONDecoder().decode([String: Member].self, from: data)
        } catch {
            throw SettingsError("the config file \(path) is not a JSON object: \(error)")
        }
        var members: [String: Value] = [:]
        for (key, member) in object {
            switch member {
            case .bool(let flag): members[key] = .bool(flag)
            case .int(let number): members[key] = .int(number)
            case .string(let text): members[key] = .string(text)
            case .list(let list): members[key] = .list(list)
            case .map(let urls) where key == "shards": members[key] = .list(urls.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            case .map, .other: throw SettingsError("the config file's \"\(key.prefix(60))\" has a value of the wrong kind")
            }
        }
        return members
    }

    /// Refuses values no server could start with, naming the setting.
    func validate() throws {
        for url in webhooks where WebhookTarget(url) == nil {
            throw SettingsError("webhook \(url.prefix(200)): an http://host[:port]/path URL, without user info or fragment")
        }
        guard LoadSignal(rawValue: autoRebalanceSignal) != nil else {
            throw SettingsError("auto_rebalance_signal must be requests, bytes or time")
        }
        for gate in autoRebalanceGates where MigrationPhase(gate: gate) == nil {
            throw SettingsError(
                "unknown auto-rebalance gate \(gate.prefix(60)); gates are \(MigrationPhase.gateable.map(\.gateName).joined(separator: ", "))"
            )
        }
        guard (1...1024).contains(embeddedShards) else { throw SettingsError("shards must be 1…1024") }
        guard (0...65535).contains(port) else { throw SettingsError("port must be 0…65535") }
        guard (50...600_000).contains(refreshMillis) else { throw SettingsError("refresh_ms must be 50…600000") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw SettingsError("unknown log level \(logLevel.prefix(40))") }
        guard (100...3_600_000).contains(idleTimeoutMillis) else { throw SettingsError("idle_timeout_ms must be 100…3600000") }
        guard (100...3_600_000).contains(requestTimeoutMillis) else { throw SettingsError("request_timeout_ms must be 100…3600000") }
        guard (1...65_536).contains(maxConnections) else { throw SettingsError("max_connections must be 1…65536") }
        guard (0...600_000).contains(shutdownGraceMillis) else { throw SettingsError("shutdown_grace_ms must be 0…600000") }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw SettingsError("host must be an address or a host name")
        }
        for spec in shards {
            do {
                _ = try ClusterConfiguration.shard(spec)
            } catch {
                throw SettingsError("shard \(spec.prefix(200)): \(error)")
            }
        }
        guard (tlsCertFile == nil) == (tlsKeyFile == nil) else { throw SettingsError("TLS needs both tls_cert_file and tls_key_file") }
        if let dataToken {
            guard dataToken.utf8.count >= 16, dataToken.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw SettingsError("data_token must be at least 16 visible ASCII characters")
            }
        }
    }

    /// The README's table of settings, one row each.
    static func markdownTable() -> String {
        var lines = ["| Config file | Flag | Environment | Default | Meaning |", "|---|---|---|---|---|"]
        for setting in all {
            lines.append("| `\(setting.key)` | `\(setting.flag)` | `\(setting.environment)` | \(setting.defaultText) | \(setting.help) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static let all: [Setting] = [
        Setting(
            key: "data", flag: "--data", kind: .string, defaultText: "`./reshard-data`",
            help: "The data folder: admin token, and SQLite metadata and shards unless told otherwise."
        ) { $0.data = $1.string },
        Setting(
            key: "embedded_shards", flag: "--shards", kind: .int, defaultText: "4",
            help: "How many SQLite shards a new embedded data folder starts with (1…1024); ignored later."
        ) { $0.embeddedShards = $1.int },
        Setting(
            key: "metadata", flag: "--metadata", kind: .string, defaultText: "`<data>/meta.sqlite`",
            help: "The metadata: a `postgres://` URL shared by several routers, or a SQLite file."
        ) { $0.metadata = $1.string },
        Setting(
            key: "shards", flag: "--shard", kind: .list, defaultText: "none",
            help:
                "Shards as `ID=URL` (`postgres://…` or `sqlite:PATH`): the flag repeated, a comma list, or the file's object of ID to URL."
        ) {
            $0.shards = $1.list
        },
        Setting(
            key: "name", flag: "--name", kind: .string, defaultText: "`reshard-<pid>`",
            help: "This router's name among the routers."
        ) { $0.name = $1.string },
        Setting(
            key: "refresh_ms", flag: "--refresh-ms", kind: .int, defaultText: "1000",
            help: "How often the router re-reads the metadata, whatever notifications say (50…600000)."
        ) { $0.refreshMillis = $1.int },
        Setting(
            key: "notifications", flag: "--[no-]notifications", kind: .bool, defaultText: "true",
            help: "Follow LISTEN/NOTIFY (off: learn only by re-reading, for tests)."
        ) { $0.notifications = $1.bool },
        Setting(
            key: "host", flag: "--host", kind: .string, defaultText: "`127.0.0.1`",
            help: "The interface to listen on; another than loopback needs an admin token of 32+ characters."
        ) { $0.host = $1.string },
        Setting(
            key: "port", flag: "--port", kind: .int, defaultText: "7420",
            help: "The port; 0 picks a free one, named by the \"reshard is serving\" line."
        ) { $0.port = $1.int },
        Setting(
            key: "admin_token", flag: "--admin-token", kind: .string, defaultText: "`<data>/admin-token`",
            help: "The admin routes' bearer token (made and kept in the data folder when not given)."
        ) { $0.adminToken = $1.string },
        Setting(
            key: "data_token", flag: "--data-token", kind: .string, defaultText: "none (open)",
            help: "When set, the data routes (rows, events) need it as a bearer token (or the admin token); 16+ visible characters."
        ) {
            $0.dataToken = $1.string
        },
        Setting(
            key: "tls_cert_file", flag: "--tls-cert-file", kind: .string, defaultText: "none (HTTP)",
            help: "A PEM certificate chain: with `tls_key_file`, the server speaks HTTPS only."
        ) { $0.tlsCertFile = $1.string },
        Setting(
            key: "tls_key_file", flag: "--tls-key-file", kind: .string, defaultText: "none",
            help: "The PEM private key of `tls_cert_file`."
        ) { $0.tlsKeyFile = $1.string },
        Setting(
            key: "log_level", flag: "--log-level", kind: .string, defaultText: "`info`",
            help: "trace, debug, info, notice, warning, error or critical."
        ) { $0.logLevel = $1.string },
        Setting(
            key: "idle_timeout_ms", flag: "--idle-timeout-ms", kind: .int, defaultText: "60000",
            help: "Close a connection idle this long, or one whose request head has not arrived in that time."
        ) { $0.idleTimeoutMillis = $1.int },
        Setting(
            key: "request_timeout_ms", flag: "--request-timeout-ms", kind: .int, defaultText: "30000",
            help: "Drop a request whose body has not arrived whole this long after its head."
        ) { $0.requestTimeoutMillis = $1.int },
        Setting(
            key: "max_connections", flag: "--max-connections", kind: .int, defaultText: "1024",
            help: "Connections served at once; more wait to be accepted (1…65536)."
        ) { $0.maxConnections = $1.int },
        Setting(
            key: "shutdown_grace_ms", flag: "--shutdown-grace-ms", kind: .int, defaultText: "10000",
            help: "On SIGTERM or SIGINT, how long requests in flight may finish (0…600000)."
        ) { $0.shutdownGraceMillis = $1.int },
        Setting(
            key: "auto_rebalance", flag: "--[no-]auto-rebalance", kind: .bool, defaultText: "false",
            help: "Start a load rebalance on its own when a shard stays hot (the migrator leader only)."
        ) { $0.autoRebalance = $1.bool },
        Setting(
            key: "auto_rebalance_signal", flag: "--auto-rebalance-signal", kind: .string, defaultText: "`requests`",
            help: "What auto-rebalance evens out: requests, bytes or time."
        ) { $0.autoRebalanceSignal = $1.string },
        Setting(
            key: "auto_rebalance_gates", flag: "--auto-rebalance-gate", kind: .list, defaultText: "none",
            help: "Gates every automatic rebalance waits at for an operator (e.g. `before_cutover`)."
        ) { $0.autoRebalanceGates = $1.list },
        Setting(
            key: "webhooks", flag: "--webhook", kind: .list, defaultText: "none",
            help: "`http://` URLs every cluster event is POSTed to."
        ) { $0.webhooks = $1.list },
    ]
}

extension ServeSettings.Value {
    var kind: ServeSettings.Kind {
        switch self {
        case .string: .string
        case .int: .int
        case .bool: .bool
        case .list: .list
        }
    }

    // Each setting's `apply` is only given a value of its own kind (`resolve` checks it).
    var string: String {
        if case .string(let text) = self { return text }
        return ""
    }
    var int: Int {
        if case .int(let number) = self { return number }
        return 0
    }
    var bool: Bool {
        if case .bool(let flag) = self { return flag }
        return false
    }
    var list: [String] {
        if case .list(let items) = self { return items }
        return []
    }
}

extension ServeSettings.Kind {
    var described: String {
        switch self {
        case .string: "a string"
        case .int: "an integer"
        case .bool: "true or false"
        case .list: "a list of strings"
        }
    }
}

/// A setting that cannot be used, said in a sentence that names it.
struct SettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
