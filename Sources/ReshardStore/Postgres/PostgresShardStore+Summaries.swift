import Foundation
import PostgresNIO
import ReshardCore

/// Counts, checksums and aggregate checks, computed by the server.
extension PostgresShardStore {
    public func summary(table: TableName, range: HashRange) async throws -> RangeSummary {
        try await run(table) { connection in
            try await Self.subrangeSummaries(connection, table: table, range: range, parts: 1, logger: self.logger)[0]
        }
    }

    /// The summaries of `range.split(into: parts)`, in one grouped query over the range.
    static func subrangeSummaries(
        _ connection: PostgresConnection, table: TableName, range: HashRange, parts: Int, logger: Logger
    ) async throws -> [RangeSummary] {
        let pieces = range.split(into: parts)
        var binds = PostgresBindings()
        binds.append(KeyHash.ordered(range.start))
        binds.append(KeyHash.ordered(range.last))
        let part: String
        if pieces.count == 1 {
            part = "0"
        } else if range.last - range.start < 1 << 63 {
            // `h - start` is the hash's offset in the range and stays below 2^63.
            binds.append(Int64(bitPattern: range.subrangeWidth(parts: parts)))
            part = "(h - $1) / $3"
        } else {
            // Over half the hash space the offset does not fit a bigint: exact numeric division.
            binds.append(String(range.subrangeWidth(parts: parts)))
            part = "floor((h::numeric - $1::numeric) / $3::numeric)::bigint"
        }
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT \(part) AS part, count(*)::bigint, count(body)::bigint,
                    coalesce(sum((digest >> 32) & 4294967295), 0)::bigint, coalesce(sum(digest & 4294967295), 0)::bigint,
                    coalesce(sum(octet_length(pk) + coalesce(octet_length(body), 0)), 0)::bigint
                FROM \(quoted(table)) WHERE h >= $1 AND h <= $2 GROUP BY 1
                """, binds: binds)
        var result = Array(repeating: RangeSummary.empty, count: pieces.count)
        let rows = try await connection.query(query, logger: logger)
        for try await (index, count, live, high, low, bytes) in rows.decode((Int64, Int64, Int64, Int64, Int64, Int64).self) {
            guard result.indices.contains(Int(index)) else { throw StoreError.backend("sub-range \(index) out of \(pieces.count)") }
            result[Int(index)] = RangeSummary(
                rows: Int(count), liveRows: Int(live),
                checksum: RangeSummary.checksum(highSum: UInt64(bitPattern: high), lowSum: UInt64(bitPattern: low)),
                bytes: Int(bytes))
        }
        return result
    }

    /// Live rows and the exact sum of the check's field over `range`. The numbers are read as the
    /// JSON text they were written as (`json`, unlike `jsonb`, keeps it) and summed in decimal,
    /// exactly as on SQLite, so both backends agree to the last digit.
    func aggregate(_ connection: PostgresConnection, check: AggregateCheck, range: HashRange) async throws -> AggregateSummary {
        var binds = PostgresBindings()
        binds.append(check.field)
        binds.append(KeyHash.ordered(range.start))
        binds.append(KeyHash.ordered(range.last))
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT json_typeof(body::json -> $1), (body::json -> $1)::text FROM \(Self.quoted(check.table))
                WHERE h >= $2 AND h <= $3 AND body IS NOT NULL
                """, binds: binds)
        var summary = AggregateSummary(rows: 0, numeric: 0, sum: "0")
        var sum = Decimal(0)
        for try await (kind, text) in try await connection.query(query, logger: logger).decode((String?, String?).self) {
            summary.rows += 1
            guard kind == "number", let text, let value = Decimal(string: text) else { continue }
            summary.numeric += 1
            sum += value
        }
        summary.sum = "\(sum)"
        return summary
    }
}
