import Foundation
import PostgresNIO
import ReshardCore

/// Client reads and writes, the migrator's copies and range scans.
extension PostgresShardStore {
    public func write(_ write: ClientWrite) async throws -> WriteOutcome {
        try StoreError.check(write)
        let hash = KeyHash.ordered(KeyHash.of(write.shardKey))
        let proposed = Int64(bitPattern: write.proposedVersion)
        let generation = Int64(bitPattern: write.generation)
        let name = Self.quoted(write.table)
        // One statement, so one round trip and its own transaction: the fence read (under the
        // lock described on the type), the condition, the version rule and the write.
        // The retirement is read in the same statement, under the same lock (see `retire`).
        // Every parameter is cast: the statement is prepared without types (see
        // `PostgresPreparedStatements`), and one only in a select list would be taken for text.
        var binds: [PostgresData] = [
            PostgresData(string: write.pk), PostgresData(int64: hash), PostgresData(int64: proposed), PostgresData(int64: generation),
        ]
        let fence = """
            WITH fence AS (
                SELECT coalesce(max(generation), 0) AS g, \(Self.retiredExpression(write.table)) AS r FROM (
                    SELECT generation FROM _reshard_fences WHERE range_start <= $2::bigint AND range_last >= $2::bigint FOR KEY SHARE) f
            ), written AS (
            """
        // The condition is a predicate on the stored row `t`, which an UPDATE and an upsert's
        // DO UPDATE evaluate on the newest committed version after locking it: two conditional
        // writers of one row are serialized there, whatever snapshot each statement started with.
        let (matches, noneMatches) = Self.conditionPredicates(write.condition, binds: &binds)
        let guarded = "fence.g <= $4::bigint AND fence.r = 0"
        let statement: String
        if let body = write.body {
            binds += [PostgresData(string: write.shardKey), PostgresData(string: body)]
            let (skey, text) = ("$\(binds.count - 1)::text", "$\(binds.count)::text")
            if let matches {
                // Only a live row can match: an UPDATE, so that a row the shard lacks is never created.
                statement = """
                    \(fence)
                        UPDATE \(name) AS t SET skey = \(skey), h = $2::bigint, version = greatest(t.version + 1, $3::bigint), body = \(text)
                        FROM fence WHERE t.pk = $1::text AND \(guarded) AND \(matches)\(noneMatches.map { " AND \($0)" } ?? "")
                        RETURNING t.version)
                    """
            } else {
                statement = """
                    \(fence)
                        INSERT INTO \(name) AS t(pk, skey, h, version, body)
                        SELECT $1::text, \(skey), $2::bigint, $3::bigint, \(text) FROM fence WHERE \(guarded)
                        ON CONFLICT (pk) DO UPDATE SET skey = excluded.skey, h = excluded.h,
                            version = greatest(t.version + 1, excluded.version), body = excluded.body\(noneMatches.map { " WHERE \($0)" } ?? "")
                        RETURNING t.version)
                    """
            }
        } else {
            let conditions = [matches, noneMatches].compactMap { $0 }.map { " AND \($0)" }.joined()
            statement = """
                \(fence)
                    UPDATE \(name) AS t SET version = greatest(t.version + 1, $3::bigint), body = NULL
                    FROM fence WHERE t.pk = $1::text AND t.body IS NOT NULL AND \(guarded)\(conditions)
                    RETURNING t.version)
                """
        }
        // The row as the statement's snapshot saw it, for what the outcome reports (created or
        // replaced, not found or refused); never for the decision to write, which the locked
        // row made. Two unconditional writers racing to create one row may both hear "created";
        // `If-None-Match: *` creates exactly once.
        let query =
            statement + """

                SELECT (SELECT g FROM fence), (SELECT r FROM fence), (SELECT version FROM written),
                    (SELECT version FROM \(name) WHERE pk = $1::text AND body IS NOT NULL)
                """
        let statements = pool.statements
        let (fenceGeneration, retired, version, liveBefore) = try await self.statement(write.table) { [binds] connection in
            var result: (Int64, Int64, Int64?, Int64?) = (0, 0, nil, nil)
            for row in try await statements.run(query, binds, on: connection) {
                result = (try row.required(0), try row.required(1), try row.value(2), try row.value(3))
            }
            return result
        }
        if fenceGeneration > generation { throw StoreError.fenced(at: UInt64(bitPattern: fenceGeneration)) }
        if retired != 0 { throw StoreError.retired(write.table, layout: UInt64(bitPattern: retired)) }
        if let version {
            let written = UInt64(bitPattern: version)
            return liveBefore == nil && write.body != nil ? .created(version: written) : .written(version: written)
        }
        if let condition = write.condition {
            // Refused by the condition, unless the snapshot shows a delete with nothing to delete
            // that the condition allows.
            if write.body == nil && liveBefore == nil && condition.admits(live: nil) { return .notFound }
            return .preconditionFailed
        }
        if write.body == nil { return .notFound }
        throw StoreError.backend("write of \(write.table)/\(write.pk) returned no version")
    }

    /// SQL predicates on the stored row `t` for `condition`'s `If-Match` and `If-None-Match`
    /// parts; a list of versions travels as one bound parameter appended to `binds`.
    static func conditionPredicates(_ condition: WriteCondition?, binds: inout [PostgresData]) -> (
        matches: String?, noneMatches: String?
    ) {
        func versions(_ set: Set<UInt64>) -> String {
            binds.append(PostgresData(string: set.sorted().map { String(Int64(bitPattern: $0)) }.joined(separator: ",")))
            return "string_to_array($\(binds.count)::text, ',')::bigint[]"
        }
        var matches: String?
        switch condition?.ifMatch {
        case nil: break
        case .any: matches = "t.body IS NOT NULL"
        case .versions(let set) where set.isEmpty: matches = "false"
        case .versions(let set): matches = "t.body IS NOT NULL AND t.version = ANY(\(versions(set)))"
        }
        var noneMatches: String?
        switch condition?.ifNoneMatch {
        case nil: break
        case .any: noneMatches = "t.body IS NULL"
        case .versions(let set) where set.isEmpty: break
        case .versions(let set): noneMatches = "(t.body IS NULL OR t.version <> ALL(\(versions(set))))"
        }
        return (matches, noneMatches)
    }

    public func writeSecond(_ row: StoredRow, routedBy generation: UInt64) async throws -> Bool {
        // A second write is a placement that keeps its version, fenced by the router's map.
        try StoreError.check(row.pk, "primary key")
        if case .written = try await placeNewer(Placement(row: row, generation: generation)) { return true }
        return false
    }

    public func get(table: TableName, pk: String) async throws -> StoredRow? {
        try StoreError.check(pk, "primary key")
        let query = PostgresQuery(
            unsafeSQL: "SELECT pk, skey, version, body FROM \(Self.quoted(table)) WHERE pk = $1", binds: Self.binds(pk))
        return try await rows(query, table: table).first
    }

    public func read(table: TableName, pk: String, shardKey: String) async throws -> FencedRead<StoredRow?> {
        try StoreError.check(pk, "primary key")
        try StoreError.check(shardKey, "shard key")
        // One statement is one snapshot: the row and the fence agree.
        let sql = """
            SELECT (SELECT max(generation) FROM _reshard_fences WHERE range_start <= $2::bigint AND range_last >= $2::bigint),
                \(Self.retiredExpression(table)), r.pk, r.skey, r.version, r.body
            FROM (SELECT 1) one LEFT JOIN \(Self.quoted(table)) r ON r.pk = $1::text
            """
        let binds = [PostgresData(string: pk), PostgresData(int64: KeyHash.ordered(KeyHash.of(shardKey)))]
        let (fence, retired, rows) = try await fencedRows(sql, binds, table: table)
        return FencedRead(value: rows.first, fence: fence, retired: retired)
    }

    public func rows(table: TableName, shardKey: String, after: String?, limit: Int) async throws -> FencedRead<[StoredRow]> {
        try StoreError.check(shardKey, "shard key")
        if let after { try StoreError.check(after, "primary key") }
        let sql = """
            SELECT (SELECT max(generation) FROM _reshard_fences WHERE range_start <= $1::bigint AND range_last >= $1::bigint),
                \(Self.retiredExpression(table)), r.pk, r.skey, r.version, r.body
            FROM (SELECT 1) one LEFT JOIN LATERAL (
                SELECT pk, skey, version, body FROM \(Self.quoted(table))
                WHERE h = $1::bigint AND skey = $2::text AND body IS NOT NULL AND pk > $4::text ORDER BY pk LIMIT $3::bigint) r ON true
            """
        let binds = [
            PostgresData(int64: KeyHash.ordered(KeyHash.of(shardKey))), PostgresData(string: shardKey), PostgresData(int64: Int64(limit)),
            PostgresData(string: after ?? ""),
        ]
        let (fence, retired, rows) = try await fencedRows(sql, binds, table: table)
        return FencedRead(value: rows, fence: fence, retired: retired)
    }

    public func apply(_ rows: [StoredRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        // In primary-key order: applies that run at once (a copy's slices, a changelog tail) on
        // overlapping keys then take their row locks in one order and cannot deadlock (they did,
        // every few cutovers, with clients writing into the moving range).
        let byTable = Dictionary(grouping: rows, by: \.table)
            .mapValues { Self.latest($0).sorted { $0.pk.utf8.lexicographicallyPrecedes($1.pk.utf8) } }
            .sorted(by: { $0.key < $1.key })
        let first = byTable[0].key
        if byTable.count == 1 {
            // A cutover's drain (writes held) feels every round trip.
            guard byTable[0].value.count >= Self.copyThreshold else {
                return try await statement(first) { connection in
                    try await self.upsert(connection, byTable[0].value, into: Self.quoted(first), onlyNewer: true)
                }
            }
            return try await bulkApply(byTable[0].value, table: first)
        }
        return try await run(first) { connection in
            var changed = 0
            for (index, (table, tableRows)) in byTable.enumerated() {
                do {
                    if tableRows.count >= Self.copyThreshold {
                        changed += try await self.stagedUpsert(
                            connection, tableRows, into: Self.quoted(table), clearAfter: index + 1 < byTable.count)
                    } else {
                        changed += try await self.upsert(connection, tableRows, into: Self.quoted(table), onlyNewer: true)
                    }
                } catch  where Self.isUndefinedTable(error) {
                    throw StoreError.unknownTable(table)
                }
            }
            return changed
        }
    }

    /// Writes `rows` (one per pk) in one statement; with `onlyNewer`, an existing row is replaced
    /// only by a strictly newer version (invariant 3). Returns how many rows changed.
    func upsert(_ connection: PostgresConnection, _ rows: [StoredRow], into name: String, onlyNewer: Bool) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        var binds = PostgresBindings()
        binds.append(rows.map(\.pk))
        binds.append(rows.map(\.shardKey))
        binds.append(rows.map { KeyHash.ordered($0.hash) })
        binds.append(rows.map { Int64(bitPattern: $0.version) })
        binds.append(rows.map { $0.body ?? "" })
        binds.append(rows.map(\.isDeleted))
        let query = PostgresQuery(
            unsafeSQL: """
                WITH written AS (
                    INSERT INTO \(name) AS t(pk, skey, h, version, body)
                    SELECT pk, skey, h, version, CASE WHEN deleted THEN NULL ELSE body END
                    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bool[])
                        AS r(pk, skey, h, version, body, deleted)
                    ON CONFLICT (pk) DO UPDATE SET skey = excluded.skey, h = excluded.h, version = excluded.version,
                        body = excluded.body
                    \(onlyNewer ? "WHERE \(VersionSQL.newer("excluded.version", than: "t.version"))" : "")
                    RETURNING 1)
                SELECT count(*) FROM written
                """, binds: binds)
        return try await Self.count(connection.query(query, logger: logger))
    }

    /// One row per pk, the newest (the first of equal versions), as applying them one by one
    /// would leave: one INSERT … ON CONFLICT statement may not touch a row twice.
    static func latest(_ rows: [StoredRow]) -> [StoredRow] {
        var chosen: [String: Int] = [:]
        var result: [StoredRow] = []
        for row in rows {
            if let index = chosen[row.pk] {
                if row.version > result[index].version { result[index] = row }
            } else {
                chosen[row.pk] = result.count
                result.append(row)
            }
        }
        return result
    }

    public func scan(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) async throws -> [StoredRow] {
        try await rows(Self.scanQuery(table: table, range: range, after: cursor, limit: limit), table: table)
    }

    static func scanQuery(table: TableName, range: HashRange, after cursor: ScanCursor?, limit: Int) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(KeyHash.ordered(range.start))
        binds.append(KeyHash.ordered(range.last))
        var sql = "SELECT pk, skey, version, body FROM \(quoted(table)) WHERE h >= $1 AND h <= $2"
        if let cursor {
            binds.append(KeyHash.ordered(cursor.hash))
            binds.append(cursor.pk)
            sql += " AND (h, pk) > ($3, $4)"
        }
        binds.append(Int64(limit))
        sql += " ORDER BY h, pk LIMIT $\(binds.count)"
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    private func fencedRows(_ sql: String, _ binds: [PostgresData], table: TableName) async throws -> (UInt64?, UInt64?, [StoredRow]) {
        let statements = pool.statements
        do {
            return try await pool.withConnection { connection in
                var fence: Int64?
                var retired: Int64 = 0
                var rows: [StoredRow] = []
                for row in try await statements.run(sql, binds, on: connection) {
                    fence = try row.value(0)
                    retired = try row.required(1)
                    guard let pk = try row.value(2, as: String.self), let skey = try row.value(3, as: String.self),
                        let version = try row.value(4, as: Int64.self)
                    else { continue }
                    let body = try row.value(5, as: String.self)
                    rows.append(StoredRow(table: table, pk: pk, shardKey: skey, version: UInt64(bitPattern: version), body: body))
                }
                return (fence.map { UInt64(bitPattern: $0) }, retired == 0 ? nil : UInt64(bitPattern: retired), rows)
            }
        } catch  where Self.isUndefinedTable(error) {
            throw StoreError.unknownTable(table)
        }
    }
}

/// The primary-key lookup protocol's writes.
extension PostgresShardStore {
    public func place(_ placement: Placement) async throws -> PlacementOutcome {
        let row = placement.row
        try StoreError.check(row.pk, "primary key")
        try StoreError.check(row.shardKey, "shard key")
        if let body = row.body, body.utf8.contains(0) { throw StoreError.invalidBody("holds a NUL byte") }
        let name = Self.quoted(row.table)
        let hash = KeyHash.ordered(row.hash)
        if placement.expected == nil && !placement.assignsVersion { return try await placeNewer(placement) }
        if let expected = placement.expected, placement.generation == nil && !placement.assignsVersion {
            return try await placeExpected(placement, expected: expected)
        }
        return try await run(row.table) { connection in
            if let generation = placement.generation {
                // The fence read takes the lock a client write takes (see the type), so a fence
                // committed after it waits for this transaction.
                var fence: Int64 = 0
                let query = PostgresQuery(
                    unsafeSQL: """
                        SELECT coalesce(max(generation), 0) FROM (
                            SELECT generation FROM _reshard_fences WHERE range_start <= $1 AND range_last >= $1 FOR KEY SHARE) f
                        """,
                    binds: {
                        var binds = PostgresBindings()
                        binds.append(hash)
                        return binds
                    }())
                for try await found in try await connection.query(query, logger: self.logger).decode(Int64.self) { fence = found }
                if fence > Int64(bitPattern: generation) { throw StoreError.fenced(at: UInt64(bitPattern: fence)) }
                let retired = PostgresQuery(unsafeSQL: "SELECT \(Self.retiredExpression(row.table))")
                for try await layout in try await connection.query(retired, logger: self.logger).decode(Int64.self) where layout != 0 {
                    throw StoreError.retired(row.table, layout: UInt64(bitPattern: layout))
                }
            }
            // Twice at most: a row inserted by another transaction after our read is locked and
            // decided again.
            for _ in 0..<2 {
                var stored: UInt64?
                let select = PostgresQuery(unsafeSQL: "SELECT version FROM \(name) WHERE pk = $1 FOR UPDATE", binds: Self.binds(row.pk))
                for try await found in try await connection.query(select, logger: self.logger).decode(Int64.self) {
                    stored = UInt64(bitPattern: found)
                }
                let (outcome, version) = placement.decide(stored: stored)
                guard let version else { return outcome }
                var binds = PostgresBindings()
                binds.append(row.pk)
                binds.append(row.shardKey)
                binds.append(hash)
                binds.append(Int64(bitPattern: version))
                binds.append(row.body)
                let sql =
                    stored == nil
                    ? "INSERT INTO \(name)(pk, skey, h, version, body) VALUES($1, $2, $3, $4, $5) ON CONFLICT (pk) DO NOTHING"
                    : "UPDATE \(name) SET skey = $2, h = $3, version = $4, body = $5 WHERE pk = $1"
                let written = try await Self.affected(
                    connection.query(PostgresQuery(unsafeSQL: sql + " RETURNING 1", binds: binds), logger: self.logger))
                if written > 0 { return outcome }
            }
            throw StoreError.backend("placement of \(row.table)/\(row.pk) raced twice with inserts of the same key")
        }
    }

    /// A placement with no compare-and-set that keeps its version (most of the lookup protocol's
    /// writes: rows and tombstones): one statement, like a second write, instead of a transaction
    /// of five round trips.
    private func placeNewer(_ placement: Placement) async throws -> PlacementOutcome {
        let row = placement.row
        var binds = Self.rowBinds(row)
        // Without a generation (the migrator's write) no fence applies: a generation no fence
        // reaches, and no retirement check.
        binds.append(placement.generation.map { Int64(bitPattern: $0) } ?? Int64.max)
        let retired = placement.generation == nil ? "0" : Self.retiredExpression(row.table)
        let query = PostgresQuery(
            unsafeSQL: """
                WITH fence AS (
                    SELECT coalesce(max(generation), 0) AS g, \(retired) AS r FROM (
                        SELECT generation FROM _reshard_fences WHERE range_start <= $3 AND range_last >= $3 FOR KEY SHARE) f
                ), written AS (
                    INSERT INTO \(Self.quoted(row.table)) AS t(pk, skey, h, version, body)
                    SELECT $1, $2, $3, $4, $5 FROM fence WHERE fence.g <= $6 AND fence.r = 0
                    ON CONFLICT (pk) DO UPDATE SET skey = excluded.skey, h = excluded.h, version = excluded.version,
                        body = excluded.body
                    WHERE \(VersionSQL.newer("excluded.version", than: "t.version"))
                    RETURNING 1)
                SELECT (SELECT g FROM fence), (SELECT r FROM fence), (SELECT count(*) FROM written),
                    (SELECT version FROM \(Self.quoted(row.table)) WHERE pk = $1)
                """, binds: binds)
        let (fence, retiredLayout, changed, stored) = try await statement(row.table) { connection in
            var result: (Int64, Int64, Int64, Int64?) = (0, 0, 0, nil)
            for try await found in try await connection.query(query, logger: self.logger).decode((Int64, Int64, Int64, Int64?).self) {
                result = found
            }
            return result
        }
        if let generation = placement.generation {
            if fence > Int64(bitPattern: generation) { throw StoreError.fenced(at: UInt64(bitPattern: fence)) }
            if retiredLayout != 0 { throw StoreError.retired(row.table, layout: UInt64(bitPattern: retiredLayout)) }
        }
        // The version read in the same statement's snapshot is the one before the write.
        return changed > 0 ? .written(version: row.version) : .notNewer(stored: stored.map { UInt64(bitPattern: $0) } ?? 0)
    }

    /// The migrator's compare-and-set that keeps its version (a layout writer's claim on a
    /// lookup entry): one statement instead of a transaction of four round trips. The row is
    /// read `FOR UPDATE` in the statement, so a concurrent claim is waited for and its result
    /// is what the expectation is checked against (never a stale snapshot: a conflict taken for
    /// "not newer" would drop a newer image); a concurrent insert of an absent key makes the
    /// insert do nothing, which is answered as a conflict to retry.
    private func placeExpected(_ placement: Placement, expected: Placement.Expectation) async throws -> PlacementOutcome {
        let row = placement.row
        let name = Self.quoted(row.table)
        var binds = Self.rowBinds(row)
        let sql: String
        switch expected {
        case .absent:
            sql = """
                WITH cur AS (SELECT version FROM \(name) WHERE pk = $1 FOR UPDATE),
                written AS (
                    INSERT INTO \(name)(pk, skey, h, version, body) SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM cur)
                    ON CONFLICT (pk) DO NOTHING RETURNING 1)
                SELECT (SELECT count(*) FROM written), (SELECT version FROM cur)
                """
        case .version(let version):
            binds.append(Int64(bitPattern: version))
            sql = """
                WITH cur AS (SELECT version FROM \(name) WHERE pk = $1 FOR UPDATE),
                written AS (
                    UPDATE \(name) AS t SET skey = $2, h = $3, version = $4, body = $5 FROM cur
                    WHERE t.pk = $1 AND cur.version = $6 AND \(VersionSQL.newer("$4", than: "cur.version")) RETURNING 1)
                SELECT (SELECT count(*) FROM written), (SELECT version FROM cur)
                """
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let (changed, stored) = try await statement(row.table) { connection in
            var result: (Int64, Int64?) = (0, nil)
            for try await found in try await connection.query(query, logger: self.logger)
                .decode((Int64, Int64?).self)
            {
                result = found
            }
            return result
        }
        if changed > 0 { return .written(version: row.version) }
        let current = stored.map { UInt64(bitPattern: $0) }
        // Not written: the expectation failed (or a concurrent insert won), or the row is not newer.
        if case .absent = expected { return .conflict(stored: current) }
        guard current == nil || placement.decide(stored: current).write != nil else { return placement.decide(stored: current).outcome }
        return .conflict(stored: current)
    }

    /// The layout generation `table` was retired for, 0 when it is not, as SQL (`TableName`
    /// admits only `[a-z0-9_]`, so the literal needs no escaping).
    static func retiredExpression(_ table: TableName) -> String {
        "(SELECT coalesce(max(layout), 0) FROM _reshard_retired WHERE tbl = '\(table.rawValue)')"
    }

    /// `$1 … $5`: a row's pk, shard key, ordered hash, version and body, as the row tables store them.
    static func rowBinds(_ row: StoredRow) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(row.pk)
        binds.append(row.shardKey)
        binds.append(KeyHash.ordered(row.hash))
        binds.append(Int64(bitPattern: row.version))
        binds.append(row.body)
        return binds
    }

    static func affected(_ sequence: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in sequence { count += 1 }
        return count
    }
}
