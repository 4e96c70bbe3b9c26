import GRDB
import ReshardCore
import ReshardStore
import ReshardTestKit
import Testing

/// What only the SQLite metadata backend promises: several handles on one file (as several
/// processes would open) share it safely, and a file written by an older Reshard opens with the
/// schema of today.
@Suite struct SQLiteMetadataFileTests {
    /// The conformance suite's two handles on SQLite are one handle; two handles on one file
    /// are two connection pools, serialized only by the file's write lock.
    @Test func appendsThroughTwoHandlesOnOneFileGetGaplessPositionsInCommitOrder() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        let stores = [try SQLiteMetadataStore(path: path), try SQLiteMetadataStore(path: path)]
        try await expectGaplessConcurrentAppends(through: stores)
        for store in stores { await store.close() }
    }

    /// A metadata file from before the logs gains their tables when opened, keeping what it held.
    @Test func aFileFromBeforeTheLogsGainsThemWhenReopened() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/meta.sqlite"
        try await SQLiteMetadataStore(path: path).saveMigration(id: "m1", journal: "{\"phase\":\"copying\"}")
        // The file as the previous release left it: no log tables, no record of their step.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "DROP TABLE log_entries; DROP TABLE log_heads")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v5-migration-logs'")
        }
        try queue.close()

        let reopened = try SQLiteMetadataStore(path: path)
        let retry = migrationLog("m1")
        try await reopened.openLogs(of: retry.migration)
        #expect(try await reopened.appendToLog(retry, ["a", "b"], limit: 10) == 2)
        #expect(try await reopened.readLog(retry, after: 1, limit: 10) == [LogEntry(position: 2, body: "b")])
        #expect(try await reopened.migrations().map(\.journal) == ["{\"phase\":\"copying\"}"])
        await reopened.close()
    }
}
