import Foundation
import ReshardStore

/// Where the shards of a test or a benchmark live. Each helper answers every case in its own
/// `switch`, so a new backend is a new case whose every answer the compiler asks for.
///
/// PostgreSQL joins when `scripts/postgres` has started its servers and the environment names
/// them (`RESHARD_PG_1`, … with logical decoding; `RESHARD_PG_REPLICA_1`, … with
/// `wal_level = replica`), as `scripts/test` does.
public enum ShardBackend: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// SQLite files in a temporary folder.
    case sqlite
    /// Databases on the servers that decode their WAL logically.
    case postgres
    /// PostgreSQL with `wal_level = replica`, where shards capture changes with triggers. A lone
    /// store is on such a server; a cluster alternates its shards between such a server and one
    /// that decodes, so its migrations carry rows both ways between the two captures (one
    /// trigger-fed server is all `scripts/test` starts).
    case postgresTriggers = "postgres-triggers"
    /// The test kit's in-memory stores, which the simulation runs on: a store and metadata
    /// backend of the conformance suites, not one a cluster of `reshard serve` can use.
    case memory

    /// The name tests are listed under.
    public var description: String { rawValue }

    /// The backends this process can run, in declaration order.
    public static var available: [ShardBackend] { allCases.filter(\.isAvailable) }

    /// The backends whose shards a router can open from a shard record (scratch clusters).
    public static var clusterCases: [ShardBackend] { available.filter(\.runsClusters) }

    /// Whether a router can open this backend's shards from a shard record.
    public var runsClusters: Bool {
        switch self {
        case .sqlite, .postgres, .postgresTriggers: true
        case .memory: false
        }
    }

    /// Whether the servers this backend needs are named in the environment.
    public var isAvailable: Bool {
        switch self {
        case .sqlite, .memory: true
        case .postgres: !PostgresScratch.servers().isEmpty
        case .postgresTriggers: !PostgresScratch.servers(name: PostgresScratch.replicaServers).isEmpty
        }
    }

    /// The servers a scratch cluster of this backend places its shards on, in turn.
    public var clusterServers: [PostgresEndpoint] {
        switch self {
        case .sqlite, .memory: []
        case .postgres: PostgresScratch.servers()
        case .postgresTriggers:
            Array(PostgresScratch.servers().prefix(1)) + PostgresScratch.servers(name: PostgresScratch.replicaServers).prefix(1)
        }
    }
}
