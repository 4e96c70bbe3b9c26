import ArgumentParser
import Foundation
import ReshardAPI

struct MigrationStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List every migration, or show one: phase, progress, lag, write pauses.",
        discussion: """
            Without an id, lists every migration (oldest first, as `reshard migrate list`); with one, or with --watch (the latest by default), shows it in full. \
            --watch redraws one line in place on a terminal (plain lines to a file or a pipe), with the bake's and the canary's countdowns, \
            and exits non-zero when the migration ends failed or rolled back. --json prints the API's document instead (not with --watch).

            Example:
              reshard migrate status
              reshard migrate status m1abc
              reshard migrate status m1abc --json
              reshard migrate status --watch
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id (default: list them all; with --watch, the latest).") var id: String?
    @Flag(help: "Refresh until the migration ends, with a progress bar and ETA.") var watch = false
    @Flag(help: "Print GET /v1/migrations/{id} (or, without an id, GET /v1/migrations) as JSON.") var json = false

    func validate() throws {
        if watch && json { throw ValidationError("--watch and --json do not go together: --json prints one document") }
    }

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        guard id != nil || watch else {
            let list: API.MigrationList = try await api.get("/v1/migrations")
            if json { try WireJSON.print(list) } else { print(MigrationText.list(list)) }
            return
        }
        guard let target = try await migrationID(id, api) else { return }
        if watch {
            try await MigrationWatch.watch(api, id: target)
        } else {
            let answer: API.MigrationStatus = try await api.get("/v1/migrations/\(target)")
            if json { try WireJSON.print(answer) } else { print(MigrationText.status(answer)) }
        }
    }
}
