import Foundation
import GRDB
import Logging
import ReshardCore
import ReshardStore

/// The raw limits a live copy is compared with: each backend's own bulk copy of the same rows
/// into a fresh table of the same shape (the `(h, pk)` index included, Reshard's changelog
/// triggers not: they are part of what the live copy pays for).
enum RawCopy {
    /// `INSERT … SELECT` from the attached source file in one transaction; returns seconds.
    static func sqlite(from source: String, to target: String, table: String) throws -> Double {
        guard table.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || $0 == 95 }) else { throw BenchError("invalid table \(table)") }
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // The same settings as a shard file.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let queue = try DatabaseQueue(path: target, configuration: configuration)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS src", arguments: [source])
            try db.execute(
                sql: """
                    CREATE TABLE r_\(table)(pk TEXT PRIMARY KEY NOT NULL, skey TEXT NOT NULL, h INTEGER NOT NULL,
                        version INTEGER NOT NULL, body TEXT, digest INTEGER NOT NULL);
                    CREATE INDEX r_\(table)_h ON r_\(table)(h, pk);
                    """)
        }
        let started = ContinuousClock.now
        try queue.write { db in
            try db.execute(sql: "INSERT INTO main.r_\(table) SELECT pk, skey, h, version, body, digest FROM src.r_\(table)")
        }
        return seconds(since: started)
    }

    /// `COPY … TO STDOUT` on the source piped into `COPY … FROM STDIN` on the target (two psql
    /// processes); the target table is created by a Reshard store first. Returns seconds.
    static func postgres(from source: PostgresEndpoint, to target: PostgresEndpoint, table: String) async throws -> Double {
        let tableName = try TableName(table).orThrow("table name")
        let store = try await PostgresShardStore.open(
            shardID: try ShardID("raw").orThrow("shard id"), endpoint: target, logger: benchLogger())
        try await store.ensureTable(tableName)
        await store.close()
        let psql = try BenchProcess.find("psql").orThrow("psql (Debian's postgresql-client)")
        let columns = "pk, skey, h, version, body"
        let script = """
            set -o pipefail
            "$PSQL" "$SOURCE" -X -q -v ON_ERROR_STOP=1 -c "\\copy (SELECT \(columns) FROM r_\(table)) TO STDOUT" \
              | "$PSQL" "$TARGET" -X -q -v ON_ERROR_STOP=1 -c "\\copy r_\(table)(\(columns)) FROM STDIN"
            """
        let started = ContinuousClock.now
        let (status, output) = BenchProcess.run(
            "/bin/bash", ["-c", script], environment: ["PSQL": psql, "SOURCE": source.description, "TARGET": target.description])
        guard status == 0 else { throw BenchError("psql copy failed (\(status)): \(output.suffix(500))") }
        return seconds(since: started)
    }

    /// pgcopydb cloning the one table (schema, data, index) into an empty database. Returns seconds.
    static func pgcopydb(
        _ pgcopydb: String, from source: PostgresEndpoint, to target: PostgresEndpoint, table: String, work: String
    ) throws -> Double {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let filters = work + "/filters.ini"
        try "[include-only-table]\npublic.r_\(table)\n".write(toFile: filters, atomically: true, encoding: .utf8)
        // pgcopydb finds pg_dump and pg_restore on PATH; Debian keeps them per major version.
        let binaries = BenchProcess.find("pg_dump").map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "/usr/bin"
        let path = binaries + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let started = ContinuousClock.now
        let (status, output) = BenchProcess.run(
            pgcopydb,
            [
                "clone", "--source", source.description, "--target", target.description, "--dir", work + "/work", "--table-jobs", "2",
                "--index-jobs", "2", "--filters", filters, "--no-owner", "--no-acl", "--no-comments", "--skip-extensions",
            ], environment: ["PATH": path])
        guard status == 0 else { throw BenchError("pgcopydb failed (\(status)): \(output.suffix(800))") }
        return seconds(since: started)
    }
}
