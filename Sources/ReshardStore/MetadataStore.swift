import ReshardCore

/// Where a shard's data lives.
public enum ShardLocation: Sendable, Hashable, Codable {
    /// A SQLite file; a relative path is resolved against the data folder.
    case sqlite(path: String)
    /// A PostgreSQL database, `postgres://USER@HOST:PORT/DATABASE` (no password: that comes
    /// from the environment of each process, see `PostgresEndpoint`).
    case postgres(url: String)

    /// The backend's name as stored and shown.
    public var backend: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgres: "postgres"
        }
    }

    /// The path or address, as stored and shown.
    public var address: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let url): url
        }
    }

    /// The location a stored backend name and address describe; nil for an unknown backend.
    public init?(backend: String, address: String) {
        switch backend {
        case "sqlite": self = .sqlite(path: address)
        case "postgres": self = .postgres(url: address)
        default: return nil
        }
    }
}

/// A registered shard.
public struct ShardRecord: Sendable, Hashable {
    /// The shard's name.
    public let id: ShardID
    /// Where its data lives.
    public let location: ShardLocation

    /// A shard record.
    public init(id: ShardID, location: ShardLocation) {
        self.id = id
        self.location = location
    }
}

/// The cluster's durable description: tables, shards and shard maps by generation.
/// Every implementation passes the shared metadata conformance tests.
public protocol MetadataStore: Sendable {
    /// Every table, by name.
    func tables() async throws -> [TableDefinition]

    /// Records a new table; throws `MetadataError.tableExists` when the name is taken.
    func createTable(_ table: TableDefinition) async throws

    /// Replaces table `table.name`'s definition with `table`, a layout of another generation,
    /// when its stored layout generation is `expected` (compare-and-set, like `publish`): the
    /// switch of a shard-key change, or its rollback. Appends a `.layout` event in the same
    /// transaction and notifies watchers with `.tables` and `.events`. Publishing the definition
    /// already stored is harmless and appends nothing; otherwise a mismatch throws
    /// `MetadataError.layoutConflict` and appends nothing.
    func publishLayout(_ table: TableDefinition, replacing expected: UInt64) async throws

    /// Every registered shard, by name.
    func shards() async throws -> [ShardRecord]

    /// Registers a shard; throws `MetadataError.shardExists` when the name is taken.
    func addShard(_ shard: ShardRecord) async throws

    /// The shard map with the highest generation, if any was published.
    func currentShardMap() async throws -> ShardMap?

    /// The shard map of one generation, if it was published.
    func shardMap(generation: UInt64) async throws -> ShardMap?

    /// Publishes `map` only if the current generation is `expected` (nil: none yet) and
    /// `map.generation` is greater; otherwise throws `MetadataError.generationConflict` and
    /// appends nothing. Appends, in the same transaction, a `.shardMap` event with the moves from
    /// the map replaced, so no map is ever published without its event; notifies watchers with
    /// `.shardMap` and `.events`.
    func publish(_ map: ShardMap, replacing expected: UInt64?) async throws

    /// Writes the whole text of the newest map when this handle's last publish kept it as its
    /// moves alone (a publish inside a cutover's hold writes only the moves of a large map), so
    /// that a reader without the replaced map reads one text instead of replaying a chain.
    /// Called after the hold; idempotent, and a no-op (no query) when nothing is due.
    func snapshotShardMaps() async throws

    /// Stores the journal of a migration (its state machine, encoded) as two texts, replacing
    /// the last one: `plan`, the plan member's JSON, and `progress`, every other member as a
    /// JSON object. The plan holds both shard maps and never changes, so a save that passes nil
    /// keeps the plan stored before and writes only the progress; it throws
    /// `MetadataError.planMissing` and writes nothing when no plan is stored (the migration is
    /// unknown, or its last journal was written whole by `admitMigration`). `migrations()`
    /// returns the two joined (`MigrationJournalText.joined`).
    func saveMigration(id: String, progress: String, plan: String?) async throws

    /// Journals migration `id` (the whole text, plan included) only if no other migration holds the cluster's one active slot,
    /// and takes the slot, as one atomic step for every process sharing the store: of
    /// concurrent admissions exactly one wins. Returns nil when admitted (also when `id` holds the
    /// slot already, as a resumed migration does), else the id of the migration holding it
    /// (empty when it could not be read).
    func admitMigration(id: String, journal: String) async throws -> String?

    /// Frees the active slot if migration `id` holds it (it ended: done or rolled back).
    func releaseMigration(id: String) async throws

    /// Every migration's journal, oldest first.
    func migrations() async throws -> [(id: String, journal: String)]

    /// The migrator's standing word to every router (held ranges, canary reads), as JSON text
    /// the engine defines; nil when there is none.
    func directive() async throws -> String?

    /// Replaces the directive (nil clears it) and notifies watchers with `.directive`.
    func saveDirective(_ text: String?) async throws

    /// Records what router `router` reports (its shadow reads, for one), replacing its last report.
    func saveReport(router: String, report: String) async throws

    /// Every router's last report, by router name.
    func reports() async throws -> [RouterReport]

    /// Opens every log of `migration` (empty, positions from 1) unless it is open already. Logs
    /// take appends only between `openLogs` and `dropLogs`: a router that has not yet heard that
    /// a migration ended cannot leave entries behind in a log nobody will read or drop.
    func openLogs(of migration: ChangeStreamID) async throws

    /// Appends `bodies` to `log` in one transaction, at the next positions (1, 2, …, never
    /// reused, even after a trim), unless the log is not open (`openLogs`) or would then hold
    /// more than `limit` entries: then nothing is appended and nil is returned, so a log stays
    /// bounded however long a migration runs. A `limit` below 1 never appends and always returns nil. Returns the last position
    /// appended (for an empty `bodies`, the current last position). Appends from several
    /// processes and handles are serialized per log, so positions follow commit order: a reader
    /// that has read through position P never later finds a new entry at or below P. Throws
    /// `MetadataError.invalidInput`, before writing anything, when a body contains NUL, which
    /// PostgreSQL cannot store.
    func appendToLog(_ log: MigrationLogID, _ bodies: [String], limit: Int) async throws -> UInt64?

    /// Up to `limit` entries of `log` after `position`, oldest first; `limit` is brought into
    /// `MigrationLogID.readLimits`, so a reader pages through a long log.
    func readLog(_ log: MigrationLogID, after position: UInt64, limit: Int) async throws -> [LogEntry]

    /// Forgets the entries of `log` at or before `position`, once they are consumed, so that the
    /// log's bound counts only what is still pending. The last position is kept: later appends
    /// continue after it.
    func trimLog(_ log: MigrationLogID, through position: UInt64) async throws

    /// How many entries `log` holds and the last position ever appended (0 and 0 for a log
    /// never appended to).
    func logStatus(_ log: MigrationLogID) async throws -> LogStatus

    /// Drops every log of `migration`, entries and positions, when the migration is gone: appends
    /// are refused until it is opened again, and then start again at position 1.
    func dropLogs(of migration: ChangeStreamID) async throws

    /// Up to `limit` events of the cluster's event log after `position`, oldest first; `limit`
    /// is brought into `MetadataEvent.readLimits`, so a reader pages through the log. A reader
    /// that has read through position P never later finds a new event at or below P.
    func events(after position: UInt64, limit: Int) async throws -> [StoredEvent]

    /// Appends `event` to the cluster's event log at the next position, trims the log to the
    /// newest `MetadataEvent.retained` in the same transaction, notifies watchers with `.events`
    /// and returns the position. For what no other write implies (a cleanup): `publish` and
    /// `publishLayout` append their own events. Appends from several processes and handles are
    /// serialized, so positions follow commit order.
    func recordEvent(_ event: MetadataEvent) async throws -> UInt64

    /// The oldest position the event log keeps and the last ever appended: (0, 0) before the first
    /// event, otherwise 1 ≤ first ≤ last, since a trim keeps the newest events. A reader that has
    /// read through P has missed events when P + 1 < first, and must start over.
    func eventBounds() async throws -> (first: UInt64, last: UInt64)

    /// What other processes (and this one) change from now on. A notification can be lost (a
    /// dropped connection, a process on another SQLite handle), so watchers also re-read on a
    /// timer; after a reconnect the stream yields every kind once, because anything may have
    /// changed meanwhile. The stream finishes when the store is closed.
    func watch() -> AsyncStream<MetadataChange>

    /// The lease that makes one process the migrator among several sharing this metadata.
    func leadership(_ name: String) -> any LeadershipLease

    /// Releases connections and ends watch streams.
    func close() async
}

/// A kind of metadata change that watchers are told about.
public enum MetadataChange: String, Sendable, Hashable, CaseIterable {
    /// A shard map was published.
    case shardMap = "shard_map"
    /// A table was created.
    case tables
    /// A shard was registered.
    case shards
    /// The directive was replaced.
    case directive
    /// An event was appended to the cluster's event log.
    case events
}

/// One router's last report.
public struct RouterReport: Sendable, Hashable {
    /// The router's name (unique per process).
    public let router: String
    /// Its report, as JSON text the engine defines.
    public let report: String
    /// When it was saved, milliseconds since 1970, by the metadata store's clock.
    public let savedAtMillis: UInt64

    /// A report.
    public init(router: String, report: String, savedAtMillis: UInt64) {
        self.router = router
        self.report = report
        self.savedAtMillis = savedAtMillis
    }
}

/// Leadership among processes: at most one holds it at a time, and it passes to another when
/// the holder dies (its connection, or its process, goes away).
public protocol LeadershipLease: Sendable {
    /// Takes the lease if nobody holds it; returns whether this process now holds it.
    func tryAcquire() async throws -> Bool

    /// Whether this process holds the lease now. Turns false as soon as the holder finds its
    /// hold lost (a dropped connection): the holder must then stop leading at once.
    var isHeld: Bool { get }

    /// Gives the lease up (harmless when not held).
    func release() async
}

/// An expected metadata failure.
public struct MetadataError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case tableExists(TableName)
        case shardExists(ShardID)
        case generationConflict(expected: UInt64?, found: UInt64?)
        case layoutConflict(TableName, expected: UInt64, found: UInt64?)
        case corrupt(String)
        case invalidInput(String)
        case planMissing(String)
    }

    private let code: Code

    /// A table of that name exists.
    public static func tableExists(_ name: TableName) -> MetadataError { MetadataError(code: .tableExists(name)) }
    /// A shard of that name exists.
    public static func shardExists(_ id: ShardID) -> MetadataError { MetadataError(code: .shardExists(id)) }
    /// Another writer published a shard map first.
    public static func generationConflict(expected: UInt64?, found: UInt64?) -> MetadataError {
        MetadataError(code: .generationConflict(expected: expected, found: found))
    }
    /// Another writer changed the table's layout first (or the table is gone: `found` nil).
    public static func layoutConflict(_ table: TableName, expected: UInt64, found: UInt64?) -> MetadataError {
        MetadataError(code: .layoutConflict(table, expected: expected, found: found))
    }
    /// Stored metadata could not be read back.
    public static func corrupt(_ what: String) -> MetadataError { MetadataError(code: .corrupt(what)) }
    /// A value the metadata cannot store as given (a log body holding NUL): refused before
    /// anything is written, on every backend alike.
    public static func invalidInput(_ what: String) -> MetadataError { MetadataError(code: .invalidInput(what)) }
    /// A journal saved without its plan found no plan stored to keep: the saver sends it again.
    public static func planMissing(_ id: String) -> MetadataError { MetadataError(code: .planMissing(id)) }

    /// Whether a save without its plan found none stored.
    public var isPlanMissing: Bool {
        if case .planMissing = code { return true }
        return false
    }

    /// Whether the name was already taken.
    public var isConflict: Bool {
        switch code {
        case .tableExists, .shardExists, .generationConflict, .layoutConflict: true
        case .corrupt, .invalidInput, .planMissing: false
        }
    }

    /// A sentence for logs and API errors.
    public var description: String {
        switch code {
        case .tableExists(let name): "table \(name) already exists"
        case .shardExists(let id): "shard \(id) already exists"
        case .generationConflict(let expected, let found):
            "shard map generation is \(found.map(String.init) ?? "none"), expected \(expected.map(String.init) ?? "none")"
        case .layoutConflict(let table, let expected, let found):
            "table \(table)'s layout generation is \(found.map(String.init) ?? "none (no such table)"), expected \(expected)"
        case .corrupt(let what): "metadata is corrupt: \(what)"
        case .invalidInput(let what): "metadata cannot store this: \(what)"
        case .planMissing(let id): "migration \(id) has no stored plan to keep; save it with its plan"
        }
    }
}
