import ArgumentParser
import Foundation
import ReshardAPI

struct Shard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register a shard, or list the registered ones.",
        discussion: """
            A new shard owns no range until a migration moves data to it (reshard migrate add-shard ID).

            Example:
              reshard shard add s5
              reshard shard add s6 --postgres postgres://reshard@db6:5432/shard6
              reshard shard list --json
            """,
        subcommands: [ShardAdd.self, ShardList.self]
    )
}

struct ShardAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Register a new, empty shard (POST /v1/shards): a SQLite file in the server's folder, or a PostgreSQL database.",
        discussion: """
            With --postgres the shard is that PostgreSQL database; put no password in the URL (every server process reads PGPASSWORD). \
            --url is the router's address, as for every client command. Exits non-zero when the shard exists or cannot be opened.

            Example:
              reshard shard add s5
              reshard shard add s6 --postgres postgres://reshard@db6:5432/shard6
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The shard's id, [a-z][a-z0-9_-]{0,31}.") var id: String
    @Option(
        help: "The shard's PostgreSQL database, postgres://USER@HOST[:PORT]/DATABASE (default: a SQLite file in the server's data folder)."
    )
    var postgres: String?
    @Flag(help: "Print the answer as JSON (POST /v1/shards's body).") var json = false

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        let created: API.ShardCreated = try await api.post("/v1/shards", body: API.CreateShard(id: id, url: postgres))
        if json {
            try WireJSON.print(created)
        } else {
            print(
                "shard \(created.id) registered (\(created.backend), \(created.address)); it owns no range yet: reshard migrate add-shard \(created.id)"
            )
        }
    }
}

struct ShardList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every registered shard: backend, ranges, share of the hash space, live rows, change capture, address.",
        discussion: "Example:\n  reshard shard list\n  reshard shard list --json")
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print the list as JSON (GET /v1/shards's body).") var json = false

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        let list: API.ShardList = try await api.get("/v1/shards")
        if json {
            try WireJSON.print(list)
        } else {
            print(Self.render(list))
        }
    }

    static func render(_ list: API.ShardList) -> String {
        guard !list.shards.isEmpty else { return "no shards" }
        let rows = list.shards.map { shard in
            [
                shard.id, shard.backend, String(shard.ranges), String(format: "%.1f %%", shard.fraction * 100), String(shard.rows),
                shard.changeCapture ?? "-", shard.address,
            ]
        }
        return TextTable.render(
            header: ["SHARD", "BACKEND", "RANGES", "HASH SPACE", "ROWS", "CAPTURE", "ADDRESS"], rows: rows, rightAligned: [2, 3, 4]
        ).joined(separator: "\n")
    }
}
