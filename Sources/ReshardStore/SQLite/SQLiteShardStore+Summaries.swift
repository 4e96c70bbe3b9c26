import Foundation
import GRDB
import ReshardCore

/// Counts, checksums, aggregate checks and range scans, computed by SQLite.
extension SQLiteShardStore {
    public func summarize(_ request: SummaryRequest) async throws -> SnapshotSummary {
        // One read transaction is one WAL snapshot: the position and every sum agree.
        try await pool.read { db in
            let position = try Self.changePosition(db)
            var summaries: [TableName: [[RangeSummary]]] = [:]
            for table in request.tables {
                summaries[table] = try request.ranges.map { try Self.subrangeSummaries(db, table: table, range: $0, parts: request.parts) }
            }
            var aggregates: [AggregateCheck: [AggregateSummary]] = [:]
            for check in request.checks {
                aggregates[check] = try request.ranges.map { try Self.aggregate(db, check: check, range: $0) }
            }
            return SnapshotSummary(position: position, summaries: summaries, aggregates: aggregates)
        }
    }

    public func snapshotScan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> RowsAtPosition {
        try await guardedRead(table) { db in
            RowsAtPosition(
                position: try Self.changePosition(db), rows: try Self.scan(db, table: table, range: range, after: cursor, limit: limit))
        }
    }

    public func scan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> [StoredRow] {
        try await guardedRead(table) { db in try Self.scan(db, table: table, range: range, after: cursor, limit: limit) }
    }

    public func summary(table: TableName, range: HashRange) async throws -> RangeSummary {
        try await guardedRead(table) { db in try Self.summary(db, table: table, range: range) }
    }

    static func scan(_ db: Database, table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) throws -> [StoredRow] {
        // SQLite seeks the index only on `h >= ?`, not on the row value, so the cursor's hash is
        // the lower bound too: otherwise every chunk re-reads the range from its start, and a
        // copy slows down as it goes (quadratic in the rows of the range).
        let from = max(range.start, cursor?.hash ?? range.start)
        var sql = "SELECT pk, skey, version, body FROM \(quoted(table)) WHERE h >= ? AND h <= ?"
        var arguments: StatementArguments = [KeyHash.ordered(from), KeyHash.ordered(range.last)]
        if let cursor {
            sql += " AND (h, pk) > (?, ?)"
            arguments += [KeyHash.ordered(cursor.hash), cursor.pk]
        }
        sql += " ORDER BY h, pk LIMIT ?"
        arguments += [limit]
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { try storedRow($0, table: table) }
    }

    /// The summaries of `range.split(into: parts)`, in one pass over the range.
    static func subrangeSummaries(_ db: Database, table: TableName, range: HashRange, parts: Int) throws -> [RangeSummary] {
        let pieces = range.split(into: parts)
        guard pieces.count > 1 else { return [try summary(db, table: table, range: range)] }
        var result = Array(repeating: RangeSummary.empty, count: pieces.count)
        let width = Int64(bitPattern: range.subrangeWidth(parts: parts))
        let start = KeyHash.ordered(range.start)
        let bounds: StatementArguments = [start, KeyHash.ordered(range.last)]
        if range.last - range.start < 1 << 63 {
            // `h - start` is the hash's offset in the range and stays below 2^63, so SQLite's signed
            // arithmetic buckets exactly as `subrangeIndex` does.
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT (h - ?) / ? AS part, count(*) AS n, count(body) AS live,
                        sum((digest >> 32) & 4294967295) AS high, sum(digest & 4294967295) AS low,
                        sum(length(CAST(pk AS BLOB)) + coalesce(length(CAST(body AS BLOB)), 0)) AS bytes
                    FROM \(quoted(table)) WHERE h >= ? AND h <= ? GROUP BY part
                    """,
                arguments: [start, width] + bounds)
            for row in rows {
                let part: Int = try row.decode(forColumn: "part")
                guard result.indices.contains(part) else { throw StoreError.backend("sub-range \(part) out of \(pieces.count)") }
                result[part] = RangeSummary(
                    rows: try row.decode(forColumn: "n"), liveRows: try row.decode(forColumn: "live"),
                    checksum: RangeSummary.checksum(
                        highSum: UInt64(bitPattern: try row.decode(Int64.self, forColumn: "high")),
                        lowSum: UInt64(bitPattern: try row.decode(Int64.self, forColumn: "low"))),
                    bytes: try row.decode(forColumn: "bytes"))
            }
            return result
        }
        // Over half the hash space the offset does not fit a signed integer: bucket here instead.
        let cursor = try Row.fetchCursor(
            db,
            sql: """
                SELECT h, digest, body IS NULL AS deleted,
                    length(CAST(pk AS BLOB)) + coalesce(length(CAST(body AS BLOB)), 0) AS bytes
                FROM \(quoted(table)) WHERE h >= ? AND h <= ?
                """,
            arguments: bounds)
        while let row = try cursor.next() {
            let part = range.subrangeIndex(of: KeyHash.unordered(try row.decode(forColumn: "h")), parts: parts)
            result[part].rows += 1
            result[part].liveRows += (try row.decode(Bool.self, forColumn: "deleted")) ? 0 : 1
            result[part].checksum = result[part].checksum &+ UInt64(bitPattern: try row.decode(Int64.self, forColumn: "digest"))
            result[part].bytes += try row.decode(Int.self, forColumn: "bytes")
        }
        return result
    }

    /// Live rows and the exact sum of the check's field over `range`. The numbers are read as the
    /// JSON text they were written as and summed in decimal, so both sides agree to the last digit
    /// whatever order the rows come in.
    static func aggregate(_ db: Database, check: AggregateCheck, range: HashRange) throws -> AggregateSummary {
        let path = "$.\(check.field)"
        let cursor = try Row.fetchCursor(
            db,
            sql: """
                SELECT json_type(body, ?) AS kind, body -> ? AS value FROM \(quoted(check.table))
                WHERE h >= ? AND h <= ? AND body IS NOT NULL
                """,
            arguments: [path, path, KeyHash.ordered(range.start), KeyHash.ordered(range.last)])
        var summary = AggregateSummary(rows: 0, numeric: 0, sum: "0")
        var sum = Decimal(0)
        while let row = try cursor.next() {
            summary.rows += 1
            let kind: String? = try row.decode(forColumn: "kind")
            guard kind == "integer" || kind == "real", let text: String = try row.decode(forColumn: "value"),
                let value = Decimal(string: text)
            else { continue }
            summary.numeric += 1
            sum += value
        }
        summary.sum = "\(sum)"
        return summary
    }

    static func summary(_ db: Database, table: TableName, range: HashRange) throws -> RangeSummary {
        // Two 32-bit partial sums: SQLite's sum() raises on signed 64-bit overflow.
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT count(*) AS n, count(body) AS live,
                    coalesce(sum((digest >> 32) & 4294967295), 0) AS high,
                    coalesce(sum(digest & 4294967295), 0) AS low,
                    coalesce(sum(length(CAST(pk AS BLOB)) + coalesce(length(CAST(body AS BLOB)), 0)), 0) AS bytes
                FROM \(quoted(table)) WHERE h >= ? AND h <= ?
                """,
            arguments: [KeyHash.ordered(range.start), KeyHash.ordered(range.last)]
        )
        guard let row else { return .empty }
        return RangeSummary(
            rows: try row.decode(forColumn: "n"),
            liveRows: try row.decode(forColumn: "live"),
            checksum: RangeSummary.checksum(
                highSum: UInt64(bitPattern: try row.decode(Int64.self, forColumn: "high")),
                lowSum: UInt64(bitPattern: try row.decode(Int64.self, forColumn: "low"))
            ),
            bytes: try row.decode(forColumn: "bytes")
        )
    }
}
