import ArgumentParser
import Foundation
import ReshardAPI

struct MigrationListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every migration, oldest first: id, kind, phase, start and end (UTC), rows copied, error.",
        discussion: """
            A migration has an end once it is done or rolled back; a failed one has none (it can be resumed or rolled back).

            Example:
              reshard migrate list
              reshard migrate list --json | jq -r '.migrations[] | select(.phase == "failed") | .id'
            """)
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print the list as JSON (GET /v1/migrations's body).") var json = false

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        let list: API.MigrationList = try await api.get("/v1/migrations")
        if json {
            try WireJSON.print(list)
        } else {
            print(MigrationText.list(list))
        }
    }
}

struct SetSettings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change a running migration's copy ceiling or bake time (POST /v1/migrations/{id}/settings).",
        discussion: """
            The change is journaled, so a migration resumed after a restart keeps it. A bake under way ends the new length after it began \
            (a shorter one may end at once). Refused, with nothing changed, for a value out of bounds and for a migration that has ended.

            Example:
              reshard migrate set m1abc --max-rows-per-second 500
              reshard migrate set m1abc --bake-ms 60000
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id.") var id: String
    @Option(help: "A new ceiling on copied rows per second (1...1000000).") var maxRowsPerSecond: Int?
    @Option(help: "A new bake length, milliseconds (0 to a year).") var bakeMs: UInt64?
    @Flag(help: "Print the answer as JSON (the settings in force).") var json = false

    func validate() throws {
        guard maxRowsPerSecond != nil || bakeMs != nil else { throw ValidationError("give --max-rows-per-second, --bake-ms or both") }
    }

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        let answer: API.MigrationSettingsChanged = try await api.post(
            "/v1/migrations/\(id)/settings", body: API.ChangeMigrationSettings(maxRowsPerSecond: maxRowsPerSecond, bakeMs: bakeMs))
        if json {
            try WireJSON.print(answer)
        } else {
            print(Self.describe(answer, nowMillis: wallMillisNow()))
        }
    }

    static func describe(_ answer: API.MigrationSettingsChanged, nowMillis: UInt64) -> String {
        let ceiling = answer.maxRowsPerSecond.map { "at most \($0) copied rows per second" } ?? "no copy ceiling"
        var bake = "a \(Countdown.text(answer.bakeMs)) bake"
        if let until = answer.bakeUntilMs, answer.phase == "baking" {
            bake += until > nowMillis ? ", \(Countdown.text(until - nowMillis)) left" : ", ending now"
        }
        return "migration \(answer.id) (\(answer.phase)): \(ceiling), \(bake)"
    }
}
