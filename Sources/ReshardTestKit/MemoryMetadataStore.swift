import Foundation
import ReshardCore
import ReshardStore
import Synchronization

/// Cluster metadata in memory, with the SQLite store's semantics (one process: watchers hear
/// this handle's changes, leadership is a flag of the handle), passing the same conformance
/// suite. `faults` runs before each write and may throw: a simulation kills a process by making
/// its journal writes fail from the moment it "dies".
public final class MemoryMetadataStore: MetadataStore {
    /// Called before every change to the metadata; throwing fails it before anything changes.
    public typealias Faults = @Sendable (String) throws -> Void

    private struct State {
        var tables: [TableName: TableDefinition] = [:]
        var shards: [ShardID: ShardRecord] = [:]
        var maps: [UInt64: ShardMap] = [:]
        /// Each migration's journal, and its plan when saved apart (nil: the journal is whole).
        var migrations: [(id: String, journal: String, plan: String?)] = []
        var active: String?
        var directive: String?
        var reports: [String: RouterReport] = [:]
        var logs: [MigrationLogID: MemoryLog] = [:]
        var events = MemoryEvents()

        mutating func save(id: String, journal: String, plan: String?) {
            if let index = migrations.firstIndex(where: { $0.id == id }) {
                migrations[index].journal = journal
                migrations[index].plan = plan
            } else {
                migrations.append((id, journal, plan))
            }
        }
    }

    private let state = Mutex(State())
    private let watchers = MetadataWatchers()
    private let leaders = ProcessLeaders()
    private let faults: Faults?
    private let wallMillis: @Sendable () -> UInt64
    private let eventsRetained: Int

    /// Empty metadata, keeping the newest `eventsRetained` events (a test lowers it to see the
    /// log trimmed).
    public init(
        wallMillis: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }, faults: Faults? = nil,
        eventsRetained: Int = MetadataEvent.retained
    ) {
        precondition(eventsRetained >= 1, "the event log keeps at least its newest event")
        self.wallMillis = wallMillis
        self.faults = faults
        self.eventsRetained = eventsRetained
    }

    private func change<T>(_ what: String, _ body: (inout State) throws -> T) throws -> T {
        try faults?(what)
        return try state.withLock { try body(&$0) }
    }

    public func tables() async throws -> [TableDefinition] { state.withLock { $0.tables.values.sorted { $0.name < $1.name } } }

    public func createTable(_ table: TableDefinition) async throws {
        try change("createTable") { state in
            if state.tables[table.name] != nil { throw MetadataError.tableExists(table.name) }
            state.tables[table.name] = table
        }
        watchers.yield(.tables)
    }

    public func publishLayout(_ table: TableDefinition, replacing expected: UInt64) async throws {
        let now = wallMillis()
        let switched = try change("publishLayout") { state -> Bool in
            let stored = state.tables[table.name]
            if stored == table { return false }
            guard let stored, stored.layoutGeneration == expected else {
                throw MetadataError.layoutConflict(table.name, expected: expected, found: stored?.layoutGeneration)
            }
            state.tables[table.name] = table
            state.events.append(.switched(table, from: expected), at: now, retaining: eventsRetained)
            return true
        }
        // `.events` first, as PostgreSQL notifies it: whoever hears the other kind has heard both.
        if switched { watchers.yield(.events) }
        watchers.yield(.tables)
    }

    public func shards() async throws -> [ShardRecord] { state.withLock { $0.shards.values.sorted { $0.id < $1.id } } }

    public func addShard(_ shard: ShardRecord) async throws {
        try change("addShard") { state in
            if state.shards[shard.id] != nil { throw MetadataError.shardExists(shard.id) }
            state.shards[shard.id] = shard
        }
        watchers.yield(.shards)
    }

    public func currentShardMap() async throws -> ShardMap? {
        state.withLock { state in state.maps.keys.max().flatMap { state.maps[$0] } }
    }

    public func shardMap(generation: UInt64) async throws -> ShardMap? { state.withLock { $0.maps[generation] } }

    /// The current map, read without suspending (a simulation's routers re-read it mid-step).
    public var current: ShardMap? { state.withLock { state in state.maps.keys.max().flatMap { state.maps[$0] } } }

    /// The saved directive, read without suspending.
    public var currentDirective: String? { state.withLock { $0.directive } }

    public func publish(_ map: ShardMap, replacing expected: UInt64?) async throws {
        let now = wallMillis()
        try change("publish") { state in
            let current = state.maps.keys.max()
            guard current == expected, map.generation > (current ?? 0) else {
                throw MetadataError.generationConflict(expected: expected, found: current)
            }
            state.events.append(.published(map, replacing: current.flatMap { state.maps[$0] }), at: now, retaining: eventsRetained)
            state.maps[map.generation] = map
        }
        watchers.yield(.events)
        watchers.yield(.shardMap)
    }

    /// Maps in memory are kept whole: nothing to write.
    public func snapshotShardMaps() async throws {}

    public func saveMigration(id: String, progress: String, plan: String?) async throws {
        try change("saveMigration") { state in
            if let plan {
                state.save(id: id, journal: progress, plan: plan)
                return
            }
            guard let index = state.migrations.firstIndex(where: { $0.id == id }), state.migrations[index].plan != nil else {
                throw MetadataError.planMissing(id)
            }
            state.migrations[index].journal = progress
        }
    }

    public func admitMigration(id: String, journal: String) async throws -> String? {
        try change("admitMigration") { state in
            if let holder = state.active, holder != id { return holder }
            state.active = id
            state.save(id: id, journal: journal, plan: nil)
            return nil
        }
    }

    public func releaseMigration(id: String) async throws {
        try change("releaseMigration") { state in
            if state.active == id { state.active = nil }
        }
    }

    public func migrations() async throws -> [(id: String, journal: String)] {
        state.withLock { $0.migrations }.map { id, journal, plan in
            (id, plan.map { MigrationJournalText.joined(plan: $0, progress: journal) } ?? journal)
        }
    }

    public func directive() async throws -> String? { state.withLock { $0.directive } }

    public func saveDirective(_ text: String?) async throws {
        try change("saveDirective") { $0.directive = text }
        watchers.yield(.directive)
    }

    public func saveReport(router: String, report: String) async throws {
        let now = wallMillis()
        try change("saveReport") { $0.reports[router] = RouterReport(router: router, report: report, savedAtMillis: now) }
    }

    public func reports() async throws -> [RouterReport] { state.withLock { $0.reports.values.sorted { $0.router < $1.router } } }

    public func openLogs(of migration: ChangeStreamID) async throws {
        try change("openLogs") { state in
            for kind in MigrationLogID.Kind.allCases {
                let log = MigrationLogID(migration: migration, kind: kind)
                if state.logs[log] == nil { state.logs[log] = MemoryLog() }
            }
        }
    }

    public func appendToLog(_ log: MigrationLogID, _ bodies: [String], limit: Int) async throws -> UInt64? {
        guard try MigrationLogID.admits(bodies, limit: limit) else { return nil }
        return try change("appendToLog") { state in state.logs[log]?.append(bodies, limit: limit) }
    }

    /// `appendToLog` without the fault hook and without suspending, for a simulation's routers
    /// (their queued second writes), like `MemoryShardStore.clientWrite`.
    public func clientAppendToLog(_ log: MigrationLogID, _ bodies: [String], limit: Int) throws -> UInt64? {
        guard try MigrationLogID.admits(bodies, limit: limit) else { return nil }
        return state.withLock { state in state.logs[log]?.append(bodies, limit: limit) }
    }

    public func readLog(_ log: MigrationLogID, after position: UInt64, limit: Int) async throws -> [LogEntry] {
        state.withLock { state in
            let entries = state.logs[log]?.entries ?? []
            let start = entries.firstIndex { $0.position > position } ?? entries.endIndex
            return Array(entries[start...].prefix(MigrationLogID.clampedReadLimit(limit)))
        }
    }

    public func trimLog(_ log: MigrationLogID, through position: UInt64) async throws {
        try change("trimLog") { state in state.logs[log]?.entries.removeAll { $0.position <= position } }
    }

    public func logStatus(_ log: MigrationLogID) async throws -> LogStatus {
        state.withLock { state in
            let stored = state.logs[log] ?? MemoryLog()
            return LogStatus(entries: stored.entries.count, last: stored.last)
        }
    }

    public func dropLogs(of migration: ChangeStreamID) async throws {
        try change("dropLogs") { state in
            for kind in MigrationLogID.Kind.allCases { state.logs[MigrationLogID(migration: migration, kind: kind)] = nil }
        }
    }

    public func events(after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        state.withLock { state in
            let kept = state.events.kept
            let start = kept.firstIndex { $0.position > position } ?? kept.endIndex
            return Array(kept[start...].prefix(MetadataEvent.clampedReadLimit(limit)))
        }
    }

    public func recordEvent(_ event: MetadataEvent) async throws -> UInt64 {
        let now = wallMillis()
        let position = try change("recordEvent") { state in
            state.events.append(event, at: now, retaining: eventsRetained)
        }
        watchers.yield(.events)
        return position
    }

    public func eventBounds() async throws -> (first: UInt64, last: UInt64) {
        state.withLock { state in (state.events.kept.first?.position ?? 0, state.events.last) }
    }

    public func watch() -> AsyncStream<MetadataChange> { watchers.stream() }

    public func leadership(_ name: String) -> any LeadershipLease { ProcessLeadership(name: name, holders: leaders) }

    public func close() async { watchers.finish() }
}

/// One migration log in memory: its entries, oldest first, and the last position ever appended.
private struct MemoryLog {
    var last: UInt64 = 0
    var entries: [LogEntry] = []

    /// Appends `bodies` unless the log would then hold more than `limit` entries; the last
    /// position, or nil when refused.
    mutating func append(_ bodies: [String], limit: Int) -> UInt64? {
        guard entries.count + bodies.count <= limit else { return nil }
        for body in bodies {
            last += 1
            entries.append(LogEntry(position: last, body: body))
        }
        return last
    }
}

/// The cluster's event log in memory: the newest events, oldest first, and the last position
/// ever appended.
private struct MemoryEvents {
    var last: UInt64 = 0
    var kept: [StoredEvent] = []

    /// Appends `event` and drops what falls out of the newest `retained`; its position.
    @discardableResult
    mutating func append(_ event: MetadataEvent, at millis: UInt64, retaining retained: Int) -> UInt64 {
        last += 1
        kept.append(StoredEvent(position: last, atMillis: millis, event: event))
        if kept.count > retained { kept.removeFirst(kept.count - retained) }
        return last
    }
}
