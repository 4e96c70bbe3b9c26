import Foundation
import PostgresNIO
import ReshardCore

/// The bulk path of `apply`, for batches as large as a copy chunk. Small batches (a cutover's
/// drain, most changelog applies) keep the single `unnest` statement: this path costs more
/// round trips, which only pay off once the rows are many.
///
/// A copy chunk usually lands on keys the target does not hold at all: then the rows go by
/// `COPY` straight into the row table: PostgreSQL's batched insert, which took under half the
/// server time of staging and merging the same 1,000-row batches into a 400,000-row table.
/// Plain inserts cannot replace anything, so the version rule
/// holds without a check: a key stored meanwhile by another transaction makes the primary key
/// refuse the whole `COPY`, which then leaves nothing. Otherwise, and after such a refusal, the
/// rows go by `COPY` into a per-session staging table and are merged by version in one
/// statement.
extension PostgresShardStore {
    /// Rows (one table's, after `latest`) from which `apply` goes by `COPY`. The path costs two
    /// round trips more than the one `unnest` statement (the look for stored keys, and `COPY`'s
    /// own handshake) and saves tens of microseconds of server time per inserted row, so it pays
    /// from a few dozen rows; 256 keeps a cutover's drain and ordinary changelog batches on the
    /// one statement, and a full copy chunk, and the throttle's halves of it down to a quarter,
    /// on `COPY`.
    static let copyThreshold = 256

    /// The staging table: a temporary table per session (no WAL, invisible to logical decoding
    /// and to every other session), emptied at each commit, so no chunk can see another's rows,
    /// and a rolled-back chunk leaves nothing behind that the next one would merge.
    static let stageTable = "_reshard_stage"

    /// Writes `rows` (one per pk, all of `table`, at least `copyThreshold` of them) with the
    /// version rule; returns how many rows changed.
    func bulkApply(_ rows: [StoredRow], table: TableName) async throws -> Int {
        // A copy chunk almost never meets a stored key, so `COPY` is tried at once: a look for
        // stored keys first would cost every row a second primary-key descent. After a batch
        // met one (catch-up batches of changed rows do, every time), the table's next batches
        // look first, until a look finds none, so they do not pay for a refused `COPY` each.
        let look = bulkConflicts.withLock { $0.contains(table) }
        var pks = PostgresBindings()
        pks.append(rows.map(\.pk))
        let anyStored = PostgresQuery(
            unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(Self.quoted(table)) WHERE pk = ANY($1::text[]))", binds: pks)
        let inserted = try await statement(table) { connection in
            if look {
                for try await stored in try await connection.query(anyStored, logger: self.logger).decode(Bool.self) where stored {
                    return false
                }
            }
            return try await self.insertByCopy(connection, rows, table: table)
        }
        bulkConflicts.withLock { conflicts in
            if inserted { conflicts.remove(table) } else { conflicts.insert(table) }
        }
        if inserted { return rows.count }
        return try await run(table) { connection in
            try await self.stagedUpsert(connection, rows, into: Self.quoted(table), clearAfter: false)
        }
    }

    /// `COPY`s `rows` straight into `table`, outside any transaction: one statement, so all rows
    /// are inserted or none. Returns false, with nothing written, when a key is already stored
    /// (a unique violation: another transaction stored it since the caller looked).
    func insertByCopy(_ connection: PostgresConnection, _ rows: [StoredRow], table: TableName) async throws -> Bool {
        let data = Self.copyText(rows)
        do {
            try await connection.copyFrom(table: "r_" + table.rawValue, columns: Self.copyColumns, logger: logger) {
                try await $0.write(data)
            }
            return true
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            return false
        }
    }

    /// The columns `copyText` writes, in its order.
    static let copyColumns = ["pk", "skey", "h", "version", "body"]

    /// Writes `rows` (one per pk, all of `name`'s table) through the staging table, in the
    /// caller's transaction, with the version rule of `upsert`: an existing row is replaced only
    /// by a strictly newer version (invariant 3). Returns how many rows changed. With
    /// `clearAfter`, the stage is emptied for another table in the same transaction.
    func stagedUpsert(_ connection: PostgresConnection, _ rows: [StoredRow], into name: String, clearAfter: Bool) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        // Once per session in effect: later calls find the table and only cost a round trip.
        try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    CREATE TEMP TABLE IF NOT EXISTS \(Self.stageTable)(
                        pk text COLLATE "C", skey text COLLATE "C", h bigint, version bigint, body text) ON COMMIT DELETE ROWS
                    """), logger: logger)
        let data = Self.copyText(rows)
        try await connection.copyFrom(table: Self.stageTable, columns: Self.copyColumns, logger: logger) {
            try await $0.write(data)
        }
        let merge = PostgresQuery(
            unsafeSQL: """
                WITH written AS (
                    INSERT INTO \(name) AS t(pk, skey, h, version, body)
                    SELECT pk, skey, h, version, body FROM \(Self.stageTable)
                    ON CONFLICT (pk) DO UPDATE SET skey = excluded.skey, h = excluded.h, version = excluded.version,
                        body = excluded.body
                    WHERE \(VersionSQL.newer("excluded.version", than: "t.version"))
                    RETURNING 1)
                SELECT count(*) FROM written
                """)
        // COPY reports rows staged; what changed is what the merge wrote.
        let changed = try await Self.count(connection.query(merge, logger: logger))
        if clearAfter { try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM \(Self.stageTable)"), logger: logger) }
        return changed
    }

    /// `rows` in `COPY`'s text format (columns pk, skey, h, version, body): tab-separated lines,
    /// a tombstone's body as `\N`, and in every text value the four bytes the format gives a
    /// meaning (backslash, tab, newline, carriage return) escaped, so values arrive byte for byte.
    static func copyText(_ rows: [StoredRow]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(rows.reduce(0) { $0 + $1.payloadBytes + 48 })
        for row in rows {
            appendEscaped(row.pk, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\t"))
            appendEscaped(row.shardKey, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\t"))
            buffer.writeString(String(KeyHash.ordered(row.hash)))
            buffer.writeInteger(UInt8(ascii: "\t"))
            buffer.writeString(String(Int64(bitPattern: row.version)))
            buffer.writeInteger(UInt8(ascii: "\t"))
            if let body = row.body {
                appendEscaped(body, to: &buffer)
            } else {
                buffer.writeStaticString("\\N")
            }
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }

    private static func appendEscaped(_ text: String, to buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { bytes in
            // Most values hold nothing to escape: one copy of the whole run.
            guard bytes.contains(where: needsEscape) else {
                buffer.writeBytes(bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                default: buffer.writeInteger(byte)
                }
            }
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }
}
