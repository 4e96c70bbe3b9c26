import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Where a PostgreSQL database is, parsed from `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
///
/// A password should not sit in a command line or a config file: when the URL has none,
/// `PGPASSWORD` from the environment is used, as libpq does. Query parameters: `pool` (most
/// connections this process opens to the database, default 8) and `sslmode` (`disable`, the
/// default for loopback, or `require`).
public struct PostgresEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or address.
    public let host: String
    /// TCP port.
    public let port: Int
    /// Role to log in as.
    public let user: String
    /// Password, if any (never printed).
    public let password: String?
    /// Database name.
    public let database: String
    /// Most pooled connections.
    public let poolSize: Int
    /// Whether TLS is required.
    public let requireTLS: Bool

    /// Parses `url`; `environment` supplies `PGPASSWORD` when the URL has no password.
    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let components = URLComponents(string: url), components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw StoreError.backend("not a postgres:// URL: \(Self.redacted(url))")
        }
        guard let host = components.host, !host.isEmpty else { throw StoreError.backend("no host in \(Self.redacted(url))") }
        guard let user = components.user, !user.isEmpty else { throw StoreError.backend("no user in \(Self.redacted(url))") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw StoreError.backend("no database in \(Self.redacted(url))") }
        var poolSize = 8
        var requireTLS = false
        for item in components.queryItems ?? [] {
            switch item.name {
            case "pool":
                guard let value = item.value.flatMap(Int.init), (1...256).contains(value) else {
                    throw StoreError.backend("pool must be 1…256 in \(Self.redacted(url))")
                }
                poolSize = value
            case "sslmode":
                switch item.value {
                case "disable": requireTLS = false
                case "require": requireTLS = true
                default: throw StoreError.backend("sslmode must be disable or require in \(Self.redacted(url))")
                }
            default: throw StoreError.backend("unknown parameter \(item.name) in \(Self.redacted(url))")
            }
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user
        self.password = components.password ?? environment["PGPASSWORD"]
        self.database = database
        self.poolSize = poolSize
        self.requireTLS = requireTLS
    }

    /// The same server and role, another database (tests create one database per shard).
    public func database(_ name: String) -> PostgresEndpoint {
        PostgresEndpoint(
            host: host, port: port, user: user, password: password, database: name, poolSize: poolSize, requireTLS: requireTLS)
    }

    private init(host: String, port: Int, user: String, password: String?, database: String, poolSize: Int, requireTLS: Bool) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.poolSize = poolSize
        self.requireTLS = requireTLS
    }

    /// The URL without its password, for logs, status and the metadata.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparsable URL)" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "(unparsable URL)"
    }

    var configuration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database,
            tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        // Commit timestamps are printed by the server in the session's zone; UTC keeps parsing trivial.
        configuration.options.additionalStartupParameters = [("TimeZone", "UTC")]
        return configuration
    }
}

/// A pool of connections to one database, with every wait bounded.
///
/// PostgresNIO's client needs its `run()` running for as long as it is used; the pool owns that
/// task and cancels it in `close()`.
public final class PostgresPool: Sendable {
    /// The database.
    public let endpoint: PostgresEndpoint
    let client: PostgresClient
    private let runner: Task<Void, Never>
    /// Longest wait for a pooled connection (a lease, not the query it runs).
    let leaseTimeout: Duration
    let logger: Logger
    /// The hot statements, prepared once per connection.
    let statements = PostgresPreparedStatements()
    /// `endpoint.description`, built once rather than for every call's registration.
    private let name: String

    /// Starts a pool; connections open on first use.
    public init(endpoint: PostgresEndpoint, logger: Logger, leaseTimeout: Duration = .seconds(5)) {
        self.endpoint = endpoint
        name = endpoint.description
        self.logger = logger
        self.leaseTimeout = leaseTimeout
        let client = PostgresClient(configuration: endpoint.configuration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    /// Closes every connection; the pool is unusable afterwards. The client's shutdown waits for
    /// leased connections, and a query stuck on a lost connection would hold it for ever, so the
    /// wait is bounded.
    public func close() async {
        runner.cancel()
        let runner = runner
        // Unstructured on purpose: a task group would wait for the stuck child anyway.
        let finished = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let first = LeaseFlag()
            Task {
                await runner.value
                if first.claim() { continuation.resume(returning: true) }
            }
            Task {
                try? await Task.sleep(for: .seconds(3))
                if first.claim() { continuation.resume(returning: false) }
            }
        }
        if !finished { logger.warning("connections to \(endpoint) did not close within 3 s") }
    }

    /// Runs `body` on a pooled connection, waiting at most `leaseTimeout` for one. Once leased,
    /// the body runs to completion: cutting a query off half-way could leave a transaction open,
    /// so only the wait for the lease itself is abandoned (on the timeout, or when the caller is
    /// cancelled). A connection that closes under the body answers the caller with an error
    /// (see `PostgresCallWatch`).
    @discardableResult
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = client
        let outcome = Outcome<T>()
        let watch = PostgresCallWatch.shared
        let id = watch.register(leaseTimeout: leaseTimeout, endpoint: name) { outcome.settle(.failure($0)) }
        let task = Task {
            let result = await Result {
                try await client.withConnection { connection in
                    // The body runs in a task of its own so that a connection lost under it
                    // (a query PostgresNIO never completes) can still be handed back to the
                    // pool, which drops it: otherwise each loss would hold a pool slot for ever.
                    let done = Outcome<T>()
                    // Given up while waiting (timed out or cancelled): its caller has its answer.
                    guard watch.leased(id, connection, lost: { done.settle(.failure($0)) }) else { throw CancellationError() }
                    Task { done.settle(await Result { try await body(connection) }) }
                    return try await done.value()
                }
            }
            watch.finish(id)
            outcome.settle(result)
        }
        watch.attach(id, task: task)
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            watch.cancel(id)
        }
    }

    /// Runs `body` in a transaction (`BEGIN` with `options`, `COMMIT`, or `ROLLBACK` on error).
    func transaction<T: Sendable>(
        _ options: String = "", _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let logger = logger
        return try await withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "BEGIN " + options), logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                // A closed connection has rolled back already; a query written to it would
                // never be answered.
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                throw error
            }
        }
    }
}

/// A flag set once: which of two racers came first.
private final class LeaseFlag: Sendable {
    private let state = Mutex(false)

    /// Sets the flag; true for the first caller only.
    func claim() -> Bool {
        state.withLock { set in
            defer { set = true }
            return !set
        }
    }
}
