import ArgumentParser
import Foundation
import ReshardAPI

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the cluster: shard map generation, shards, their share of the hash space and row counts.",
        discussion: """
            Asks a running router (GET /v1/cluster) with the admin token from --token, $RESHARD_ADMIN_TOKEN, or <data>/admin-token.

            Example:
              reshard status --data ./reshard-data
              reshard status --url http://10.0.0.5:7420 --token "$TOKEN"
            """
    )

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let api = try await connection.connect()
        let cluster: API.Cluster = try await api.get("/v1/cluster")
        await api.close()
        print(StatusTable.render(cluster, url: connection.url))
    }
}

enum StatusTable {
    static func render(_ cluster: API.Cluster, url: String) -> String {
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
        if !cluster.tables.isEmpty {
            lines += [""]
            lines += TextTable.render(
                header: ["TABLE", "PRIMARY KEY", "SHARD KEY"],
                rows: cluster.tables.map { [$0.name, $0.primaryKey, $0.shardKey] },
                rightAligned: [])
        }
        return lines.joined(separator: "\n")
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
