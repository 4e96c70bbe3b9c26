import ArgumentParser
import Foundation
import ReshardAPI

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show the cluster: shard map generation, shards, their share of the hash space, row counts, change capture and the active migration.",
        discussion: """
            Asks a running router (GET /v1/cluster, GET /v1/migrations) with the admin token from --token, $RESHARD_ADMIN_TOKEN, or <data>/admin-token. \
            The active migration is the latest one that has not ended done or rolled back (a failed one still holds the slot). \
            --json prints {"cluster": <GET /v1/cluster>, "active_migration": <GET /v1/migrations/{id}> or null}.

            Example:
              reshard status --data ./reshard-data
              reshard status --url http://10.0.0.5:7420 --token "$TOKEN"
              reshard status --json | jq .active_migration.phase
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print the cluster and the active migration as JSON (the API's documents).") var json = false

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        let cluster: API.Cluster = try await api.get("/v1/cluster")
        let list: API.MigrationList = try await api.get("/v1/migrations")
        var active: API.MigrationStatus?
        if let id = StatusTable.activeMigration(list)?.id { active = try await api.get("/v1/migrations/\(id)") }
        if json {
            try WireJSON.print(StatusDocument(cluster: cluster, activeMigration: active))
        } else {
            print(StatusTable.render(cluster, url: connection.url, active: active))
        }
    }
}

/// `reshard status --json`: the API's own documents side by side, so a script reads the same
/// members it would read from the API.
struct StatusDocument: Encodable {
    let cluster: API.Cluster
    let activeMigration: API.MigrationStatus?

    enum CodingKeys: String, CodingKey {
        case cluster
        case activeMigration = "active_migration"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cluster, forKey: .cluster)
        if let activeMigration {
            try container.encode(activeMigration, forKey: .activeMigration)
        } else {
            try container.encodeNil(forKey: .activeMigration)
        }
    }
}

enum StatusTable {
    /// The migration that holds the one active slot: the latest that has not ended.
    static func activeMigration(_ list: API.MigrationList) -> API.MigrationSummary? {
        list.migrations.last { $0.phase != "done" && $0.phase != "rolled_back" }
    }

    static func render(_ cluster: API.Cluster, url: String, active: API.MigrationStatus? = nil) -> String {
        let totalRows = cluster.shards.reduce(0) { $0 + $1.rows }
        var lines = [
            "Reshard cluster at \(url): shard map generation \(cluster.generation), "
                + "\(cluster.shards.count) shards, \(cluster.tables.count) tables, \(totalRows) rows",
            "",
        ]
        let header = ["SHARD", "BACKEND", "RANGES", "HASH SPACE", "ROWS", "ADDRESS"]
        let rows = cluster.shards.map { shard in
            [
                shard.id, shard.backend, String(shard.ranges), String(format: "%.1f %%", shard.fraction * 100), String(shard.rows),
                shard.address,
            ]
        }
        lines += TextTable.render(header: header, rows: rows, rightAligned: [2, 3, 4])
        if let capture = captureLine(cluster.shards) { lines += ["", capture] }
        lines += ["", migrationLine(active)]
        if !cluster.tables.isEmpty {
            lines += [""]
            lines += TextTable.render(
                header: ["TABLE", "PRIMARY KEY", "SHARD KEY"],
                rows: cluster.tables.map { [$0.name, $0.primaryKey, $0.shardKey] },
                rightAligned: [])
        }
        return lines.joined(separator: "\n")
    }

    /// How the shards capture changes, shards that share a way named together
    /// (`capture  s1 s2: triggers; s3: logical decoding …`); nil when no shard said.
    static func captureLine(_ shards: [API.ShardInfo]) -> String? {
        let named = shards.compactMap { shard in shard.changeCapture.map { (shard.id, $0) } }
        guard !named.isEmpty else { return nil }
        let groups = Dictionary(grouping: named, by: \.1).sorted { $0.key < $1.key }
        return "capture    " + groups.map { "\($0.value.map(\.0).joined(separator: " ")): \($0.key)" }.joined(separator: "; ")
    }

    /// The active migration's id, kind, phase and progress, or that there is none.
    static func migrationLine(_ active: API.MigrationStatus?) -> String {
        guard let active else { return "migration  none active" }
        let summary = active.summary
        var line = "migration  \(summary.id) (\(summary.kind)): \(summary.phase)"
        if let estimated = summary.rowsEstimated, estimated > 0 {
            line += String(
                format: ", %d of %d rows copied (%.1f %%)", summary.rowsCopied, estimated,
                min(100, Double(summary.rowsCopied) / Double(estimated) * 100))
        } else {
            line += ", \(summary.rowsCopied) rows copied"
        }
        if case .detail(let detail) = active, let countdown = WatchLine.countdown(detail, nowMillis: wallMillisNow()) {
            line += "; " + countdown
        }
        if let error = summary.error { line += "; error: \(error)" }
        return line
    }
}

/// Plain aligned columns for terminals and logs.
enum TextTable {
    static func render(header: [String], rows: [[String]], rightAligned: Set<Int>) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            var line = row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? pad + cell : cell + pad
            }.joined(separator: "  ")
            // Trailing padding only: a right-aligned first column keeps its leading spaces.
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }
}
