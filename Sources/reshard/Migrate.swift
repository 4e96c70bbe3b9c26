import ArgumentParser
import Foundation
import ReshardAPI

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Move data between shards live: add, remove, rebalance, move a range, change a table's shard key; watch, verify, approve, pause, resume, roll back.",
        discussion: """
            Every migration copies the moving ranges in chunks while the changelog keeps the new owners current, verifies every move (sub-range checksums, row diffs of what differs, repair from the old owners), shifts reads gradually through a canary of shadow reads, cuts over with a write pause of milliseconds, keeps the old owners current during bake (so rollback loses nothing), then cleans up. Gates make it wait for an operator before named phases.

            Example:
              reshard migrate add-shard s5 --dry-run
              reshard migrate add-shard s5 --gate before_cutover --check orders.amount
              reshard migrate status --watch
              reshard migrate list --json
              reshard migrate set m1abc --max-rows-per-second 500 --bake-ms 60000
              reshard migrate verify m1abc
              reshard migrate approve m1abc
              reshard migrate change-shard-key orders --shard-key customer_id --dry-run
            """,
        subcommands: [
            AddShard.self, RemoveShard.self, Rebalance.self, SplitHotRange.self, MoveRange.self, ChangeShardKey.self,
            MigrationStatusCommand.self, MigrationListCommand.self, MigrationReportCommand.self, SetSettings.self, Verify.self,
            Approve.self,
            Pause.self, Resume.self, Rollback.self,
        ]
    )
}

/// Options every migration-creating command takes.
struct MigrationOptions: ParsableArguments {
    @Flag(help: "Only plan: print the moves, the rows and bytes they would copy, and what each phase will do.")
    var dryRun = false

    @Option(help: "How the data moves: cdc_backfill (the default), dual_write or traffic_replay (README, \"Strategies\").")
    var strategy: String?

    @Option(help: "Rows per copy chunk.")
    var chunkRows: Int?

    @Option(help: "Milliseconds the old owners stay current after the switch before cleanup.")
    var bakeMs: UInt64?

    @Option(
        help: "A ceiling on copied rows per second (the throttle also slows down on its own when the foreground p99 doubles or lag grows).")
    var maxRowsPerSecond: Int?

    @Option(help: "Slow the copy when the router's p99 passes this multiple of its baseline; 0 turns that off (default 2).")
    var latencyFactor: Double?

    @Option(
        name: .customLong("gate"),
        help:
            "Wait for `reshard migrate approve` before this phase: before_cutover, before_cleanup, before_canary, before_verifying, before_catching_up, before_copying, before_dual_writing, before_recording or before_serving_reads (repeatable)."
    )
    var gates: [String] = []

    @Option(
        name: .customLong("check"),
        help:
            "An application-level check, table.field: live rows and the exact sum of that numeric field, old owners against new (repeatable)."
    )
    var checks: [String] = []

    @Option(help: "Canary read percentages, comma-separated (default 1,10,50,100); none skips the canary.")
    var canarySteps: String?

    @Option(help: "Milliseconds each canary step lasts (default 30000).")
    var canaryStepMs: UInt64?

    @Option(
        help:
            "write_new_read_old: read percentages the new owners serve alone after verification, comma-separated, like 1,10,50,100 (default none: all at once)."
    )
    var readSteps: String?

    @Option(help: "Milliseconds each read step lasts (default 30000).")
    var readStepMs: UInt64?

    @Option(help: "Send reads back when more than this share of the served ones failed (default 0.01).")
    var maxReadErrorRate: Double?

    @Option(help: "Send reads back when the served reads' p99 passes this multiple of the old path's (default 2).")
    var maxReadLatencyFactor: Double?

    @Option(help: "Sub-ranges each move is compared in (default 256).")
    var verifySubranges: Int?

    @Flag(help: "Return at once instead of watching the migration until it ends.")
    var detach = false

    func validate() throws {
        for (option, text) in [("--canary-steps", canarySteps), ("--read-steps", readSteps)]
        where text != nil && Self.percentages(text) == nil {
            throw ValidationError("\(option) takes comma-separated percentages like 1,10,50,100, or none")
        }
    }

    /// `1,10,50,100` as numbers, `none` as none; nil for no text or one that is not a list of
    /// numbers (the server checks the bounds, so its words are the same for every client).
    static func percentages(_ text: String?) -> [Double]? {
        guard let text else { return nil }
        if text == "none" { return [] }
        let numbers = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
        return numbers.contains(nil) ? nil : numbers.compactMap { $0 }
    }

    /// The request for a migration of `kind` with these options (none sent when none is given,
    /// so the server's defaults apply).
    func request(
        kind: String, shard: String? = nil, table: String? = nil, shardKey: String? = nil, start: String? = nil, end: String? = nil
    ) -> API.CreateMigration {
        var options = API.MigrationOptions()
        options.chunkRows = chunkRows
        options.bakeMs = bakeMs
        options.maxRowsPerSecond = maxRowsPerSecond
        options.latencyFactor = latencyFactor
        options.gates = gates.isEmpty ? nil : gates
        options.checks = checks.isEmpty ? nil : checks
        options.canarySteps = Self.percentages(canarySteps)
        options.canaryStepMs = canaryStepMs
        options.readSteps = Self.percentages(readSteps)
        options.readStepMs = readStepMs
        options.maxReadErrorRate = maxReadErrorRate
        options.maxReadLatencyFactor = maxReadLatencyFactor
        options.verifySubranges = verifySubranges
        return API.CreateMigration(
            kind: kind, shard: shard, table: table, shardKey: shardKey, start: start, end: end, strategy: strategy, dryRun: dryRun,
            options: options == API.MigrationOptions() ? nil : options)
    }
}

/// Sends a migration request and prints the plan (dry run) or watches it run.
func startMigration(_ connection: ConnectionOptions, _ options: MigrationOptions, _ request: API.CreateMigration) async throws {
    let api = try await connection.connect()
    let created: API.MigrationCreated = try await api.post("/v1/migrations", body: request)
    print(MigrationText.plan(created.plan))
    guard let id = created.id else { return }
    print("\nmigration \(id) started")
    defer { Task { await api.close() } }
    if !options.detach { try await MigrationWatch.watch(api, id: id) }
}

struct AddShard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a shard: registers it if needed, then moves about 1/(N+1) of the data to it.",
        discussion: "Example:\n  reshard migrate add-shard s5 --dry-run")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: MigrationOptions
    @Argument(help: "The new shard's id.") var shard: String

    func run() async throws {
        if !options.dryRun {
            let api = try await connection.connect()
            // Registering twice is harmless: a shard that exists is simply used.
            let _: API.ShardCreated? = try? await api.post("/v1/shards", body: API.CreateShard(id: shard))
            await api.close()
        }
        try await startMigration(connection, options, options.request(kind: "add_shard", shard: shard))
    }
}

struct RemoveShard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove a shard: its ranges move to the others, then it owns nothing.",
        discussion: "Example:\n  reshard migrate remove-shard s2")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: MigrationOptions
    @Argument(help: "The shard to empty.") var shard: String

    func run() async throws {
        try await startMigration(connection, options, options.request(kind: "remove_shard", shard: shard))
    }
}

struct Rebalance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-cut the ranges so every shard holds the same rows, or carries the same load.",
        discussion: """
            By rows (the default), by the routers' measured requests, bytes or time (their last 10 s, every router's merged), or by a weighted mix. A load rebalance is refused when one key is the heat (cache it, replicate its reads, or salt it) and when the busiest shard is within 1.1x the mean already.

            Example:
              reshard migrate rebalance --dry-run
              reshard migrate rebalance --signal requests --dry-run
              reshard migrate rebalance --signal mix --weights rows=1,requests=2
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: MigrationOptions
    @Option(help: "What to even out: rows, requests, bytes, time or mix.") var signal: String?
    @Option(help: "For --signal mix: part=weight pairs, comma-separated (rows, requests, bytes, time; 0...1000).") var weights: String?

    func validate() throws {
        if weights != nil, signal != "mix" { throw ValidationError("--weights go with --signal mix") }
        if signal == "mix" { _ = try Self.parseWeights(weights ?? "") }
    }

    func run() async throws {
        var request = options.request(kind: "rebalance")
        request.signal = signal
        if let weights { request.weights = try Self.parseWeights(weights) }
        try await startMigration(connection, options, request)
    }

    /// `rows=1,requests=2` as the API's weights; each part at most once.
    static func parseWeights(_ text: String) throws -> API.LoadWeights {
        var weights = API.LoadWeights()
        var seen: Set<String> = []
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, let value = Double(parts[1]), value.isFinite, seen.insert(String(parts[0])).inserted else {
                throw ValidationError("--weights takes part=weight pairs such as rows=1,requests=2, each part once")
            }
            switch parts[0] {
            case "rows": weights.rows = value
            case "requests": weights.requests = value
            case "bytes": weights.bytes = value
            case "time": weights.time = value
            default: throw ValidationError("--weights parts are rows, requests, bytes and time, not \(parts[0])")
            }
        }
        return weights
    }
}

struct SplitHotRange: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split-hot-range",
        abstract: "Move part of the hot shard's hottest range to the coolest shard, as `reshard load` finds it.",
        discussion: """
            Runs the hot-spot finding of GET /v1/load: a shard above 1.1x the mean in each of the last 10 s gives the front of its hottest range, cut where the load meets the coolest shard halfway. Refused when no shard stayed hot, when one key is the heat, or when no move is worth it.

            Example:
              reshard migrate split-hot-range --dry-run
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: MigrationOptions
    @Option(help: "The load signal that finds the hot range: requests, bytes or time.") var signal = "requests"

    func run() async throws {
        var request = options.request(kind: "split_hot_range")
        request.signal = signal
        try await startMigration(connection, options, request)
    }
}

struct MoveRange: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move one hash range [start, end) to a shard (a tenant, a hot spot).",
        discussion: "Example:\n  reshard migrate move-range --start 0x4000000000000000 --end 0x8000000000000000 --to s4")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: MigrationOptions
    @Option(help: "The first hash, 0x-hex.") var start: String
    @Option(help: "The exclusive end, 0x-hex (0x10000000000000000 for the top).") var end: String
    @Option(help: "The shard that receives the range.") var to: String

    func run() async throws {
        try await startMigration(connection, options, options.request(kind: "move_range", shard: to, start: start, end: end))
    }
}

struct ChangeShardKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Place a table's rows by another field, live: a new layout is built beside the old one, then switched.",
        discussion: """
            Every row is copied into a new layout placed by the field, kept current from the table's changelog, verified row by row, then the table alone is switched (its writes held for milliseconds). Rows are still read and written by primary key afterwards (a primary-key lookup finds them), and listed by the new field with ?shard_key=. Rows without a usable value of the field (a string or an integer) are counted by --dry-run and refuse the start. The old layout stays current during the bake, so a rollback loses nothing, and is dropped at cleanup.

            Example:
              reshard migrate change-shard-key orders --shard-key customer_id --dry-run
              reshard migrate change-shard-key orders --shard-key customer_id --bake-ms 60000
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: MigrationOptions
    @Argument(help: "The table to place again.") var table: String
    @Option(help: "The field that places its rows from the switch on.") var shardKey: String

    func run() async throws {
        try await startMigration(
            connection, options, options.request(kind: "change_shard_key", table: table, shardKey: shardKey))
    }
}

struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Let a migration waiting at a gate go on (or approve a later gate ahead of time).",
        discussion: "Example:\n  reshard migrate approve m1abc\n  reshard migrate approve m1abc --gate before_cleanup")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id.") var id: String
    @Option(help: "The gate to approve (default: the one the migration waits at).") var gate: String?
    @Flag(help: "Print the answer as JSON (the id and the phase it left the migration in).") var json = false

    func run() async throws {
        try await sendCommand(connection, id, "approve", approval: API.Approve(gate: gate), json: json)
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a migration's verification: per move rows compared, sub-ranges, differences by class, repairs, time.",
        discussion: "Example:\n  reshard migrate verify m1abc\n  reshard migrate verify m1abc --all")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id (default: the latest).") var id: String?
    @Flag(help: "List every move, not only those with differences and the slowest.") var all = false
    @Flag(help: "Print the report as JSON (GET /v1/migrations/{id}/verification's body).") var json = false

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        guard let target = try await migrationID(id, api) else { return }
        let report: API.VerificationReport = try await api.get("/v1/migrations/\(target)/verification")
        if json { try WireJSON.print(report) } else { print(VerificationText.report(report, all: all)) }
    }
}

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pause a migration while it copies, catches up or cleans up.", discussion: "Example:\n  reshard migrate pause m1abc")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id.") var id: String
    @Flag(help: "Print the answer as JSON (the id and the phase it left the migration in).") var json = false
    func run() async throws { try await sendCommand(connection, id, "pause", json: json) }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resume a paused or failed migration.", discussion: "Example:\n  reshard migrate resume m1abc")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id.") var id: String
    @Flag(help: "Print the answer as JSON (the id and the phase it left the migration in).") var json = false
    func run() async throws { try await sendCommand(connection, id, "resume", json: json) }
}

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll a migration back (any phase before cleanup); no write is lost.",
        discussion: "Example:\n  reshard migrate rollback m1abc")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id.") var id: String
    @Flag(help: "Print the answer as JSON (the id and the phase it left the migration in).") var json = false
    func run() async throws { try await sendCommand(connection, id, "rollback", json: json) }
}

/// `id`, or the latest migration's when none is given; nil (after saying so) when there is none.
func migrationID(_ id: String?, _ api: AdminAPI) async throws -> String? {
    if let id { return id }
    let list: API.MigrationList = try await api.get("/v1/migrations")
    guard let latest = list.migrations.last?.id else {
        // Standard error: standard output is for the command's document (`--json`).
        FileHandle.standardError.write(Data("no migrations yet\n".utf8))
        return nil
    }
    return latest
}

/// Sends `command` (with its approval body, for approve; pause, resume and rollback read none)
/// and prints the phase it left the migration in.
func sendCommand(
    _ connection: ConnectionOptions, _ id: String, _ command: String, approval: API.Approve? = nil, json: Bool = false
) async throws {
    let api = try await connection.connect()
    let path = "/v1/migrations/\(id)/\(command)"
    let answer: API.CommandResult
    if let approval { answer = try await api.post(path, body: approval) } else { answer = try await api.post(path) }
    await api.close()
    if json { try WireJSON.print(answer) } else { print("migration \(answer.id): \(command) accepted, now \(answer.phase)") }
}
