import Logging
import PostgresNIO
import Synchronization

/// Statements prepared once per pooled connection, then run by name: the clients' reads and
/// writes, whose planning costs PostgreSQL more than running them.
///
/// Why: the fenced read (the row, the fence over its hash and the table's retirement, in one
/// statement so in one snapshot) did 8,283 reads/s under pgbench sent unnamed, as PostgresNIO
/// sends every query (parsed and planned each time), and 50,015/s prepared. PostgresNIO 1.33's
/// `PostgresPreparedStatement` takes its SQL from a type, known at compile time, and row tables
/// are named at run time; so this uses `prepare(query:)` and `PreparedQuery`, whose binds are
/// `PostgresData`.
///
/// A statement lives as long as its connection (the server forgets it with the session), so
/// the cache is keyed by connection and drops the entries of closed connections as new ones
/// come. A leased connection is used by one task at a time, so no statement is prepared twice
/// on one connection at once.
final class PostgresPreparedStatements: Sendable {
    private struct Session {
        let connection: PostgresConnection
        var statements: [String: PreparedQuery] = [:]
    }

    private let sessions = Mutex<[PostgresConnection.ID: Session]>([:])

    /// Statements kept per connection; past it a statement runs unnamed, as before (a cluster
    /// has a few statements per table, so only a very large schema reaches it).
    static let maxPerConnection = 512

    /// Runs `sql` with `binds` on `connection`, prepared there first if it is not yet.
    ///
    /// Errors of the server come back as `PostgresError` (the API's older type); `sqlState` and
    /// `PostgresShardStore.message` read both kinds.
    func run(_ sql: String, _ binds: [PostgresData], on connection: PostgresConnection) async throws -> [PreparedRow] {
        let statement = try await prepared(sql, on: connection)
        do {
            return try await statement.execute(binds).get().map(PreparedRow.init)
        } catch let error where Self.isStale(error) {
            // The server no longer has the statement, or its plan's row type changed under it
            // (a table recreated otherwise): prepare it afresh, once.
            forget(sql, on: connection)
            return try await prepared(sql, on: connection).execute(binds).get().map(PreparedRow.init)
        }
    }

    private func prepared(_ sql: String, on connection: PostgresConnection) async throws -> PreparedQuery {
        if let statement = sessions.withLock({ $0[connection.id]?.statements[sql] }) { return statement }
        let statement = try await connection.prepare(query: sql).get()
        sessions.withLock { sessions in
            if sessions[connection.id] == nil {
                // A new connection: those closed since the last one can go, with their statements.
                sessions = sessions.filter { !$0.value.connection.isClosed }
                sessions[connection.id] = Session(connection: connection)
            }
            if sessions[connection.id]?.statements.count ?? 0 < Self.maxPerConnection {
                sessions[connection.id]?.statements[sql] = statement
            }
        }
        return statement
    }

    private func forget(_ sql: String, on connection: PostgresConnection) {
        _ = sessions.withLock { $0[connection.id]?.statements.removeValue(forKey: sql) }
    }

    /// How many statements are prepared on open connections (for tests).
    var count: Int {
        sessions.withLock { $0.values.filter { !$0.connection.isClosed }.reduce(0) { $0 + $1.statements.count } }
    }

    /// 26000: no such prepared statement; 0A000: "cached plan must not change result type".
    private static func isStale(_ error: any Error) -> Bool {
        let state = sqlState(error)
        return state == "26000" || state == "0A000"
    }

    /// The SQLSTATE of a server error, in either of PostgresNIO's error types.
    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if case .server(let server) = error as? PostgresError { return server.fields[.sqlState] }
        return nil
    }
}

/// A row of a prepared statement, its cells decoded as binary whatever its description says:
/// PostgresNIO 1.33 asks for every result of an extended query in binary (the comment in its
/// `ExtendedQueryStateMachine.rowDescriptionReceived`) but hands a prepared statement's rows
/// the description its `Describe` got, which says text.
struct PreparedRow: Sendable {
    private let cells: [PostgresCell]

    init(_ row: PostgresRow) { cells = Array(row) }

    /// Column `index` as `T`, nil for SQL NULL.
    func value<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T? {
        guard cells.indices.contains(index) else { throw StoreError.backend("a prepared statement returned \(cells.count) columns") }
        let cell = cells[index]
        guard var bytes = cell.bytes else { return nil }
        return try T(from: &bytes, type: cell.dataType, format: .binary, context: .default)
    }

    /// Column `index` as `T`, which must not be NULL.
    func required<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T {
        guard let value = try value(index, as: type) else {
            throw StoreError.backend("a prepared statement returned NULL in column \(cells[index].columnName)")
        }
        return value
    }
}
