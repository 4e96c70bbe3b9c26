import Foundation
import ReshardCore
import ReshardStore

/// The migrator's standing word to every router, kept in the metadata (`MetadataStore.directive`)
/// so routers in other processes follow it as the migrator's own router does.
public struct RouterDirective: Sendable, Hashable, Codable {
    /// Writes to ranges that are cutting over wait (DESIGN.md cutover step 2).
    public struct Hold: Sendable, Hashable, Codable {
        /// The held ranges.
        public var ranges: [HashRange]
        /// The generation the cutover switches to: a router that has it already holds nothing.
        /// For a table's hold, the layout generation.
        public var generation: UInt64
        /// The one table whose writes are held (a shard-key change), whatever their range; nil:
        /// every table's writes to `ranges`.
        public var table: TableName?

        /// A hold of `ranges` until generation `generation` is in force.
        public init(ranges: [HashRange], generation: UInt64) {
            self.ranges = ranges
            self.generation = generation
            self.table = nil
        }

        /// A hold of every write to `table` until its layout generation `layout` is in force.
        public init(table: TableName, layout: UInt64) {
            self.ranges = [.full]
            self.generation = layout
            self.table = table
        }
    }

    /// The cutover hold, if one is under way.
    public var hold: Hold?
    /// What routers do to a migration's moving ranges (its strategy's modes, the canary).
    public var routes: RouteDirective?

    /// A directive.
    public init(hold: Hold? = nil, routes: RouteDirective? = nil) {
        self.hold = hold
        self.routes = routes
    }

    var isEmpty: Bool { hold == nil && routes == nil }

    static func decode(_ text: String?) throws -> RouterDirective? {
        guard let text else { return nil }
        return try JSONDecoder().decode(RouterDirective.self, from: Data(text.utf8))
    }

    func encoded() throws -> String? {
        guard !isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// What one router tells the migrator: its canary's shadow reads, its second writes.
public struct RouterReportBody: Sendable, Hashable, Codable {
    /// The router's canary figures.
    public var shadow: ShadowReads.Stats
    /// The router's second writes (optional: reports of routers without them still decode).
    public var secondWrites: SecondWrites.Stats?
    /// The reads the router served from the new owners alone (optional, like `secondWrites`).
    public var served: ServedReads.Stats?
    /// The router's load (optional: only a router that saw requests lately reports it).
    public var load: LoadSnapshot?
    /// The map generation the router routes by (optional, like `load`: older reports lack it).
    public var generation: UInt64?
    /// Whether the router's process runs the migrations; nil when it runs no migrator.
    public var leader: Bool?
}

extension ShardRouter {
    /// Follows the metadata until cancelled: every change another process announces, and a full
    /// re-read every `interval` as a safety net for a lost notification, updates this router's
    /// tables, shards, shard map, held ranges and canary. While a canary runs, the router's
    /// shadow-read figures are reported back every `interval` for the migrator.
    public func follow(every interval: Duration = .seconds(1), notifications: Bool = true) async {
        let changes = notifications ? metadata.watch() : nil
        await withTaskGroup(of: Void.self) { group in
            if let changes {
                group.addTask {
                    // An event-log append always comes with the change it records (or is a
                    // cleanup, which changes nothing a router holds): nothing to re-read for it.
                    for await change in changes where change != .events { await self.refreshLogged() }
                }
            }
            group.addTask {
                let clock = ContinuousClock()
                var loadReported = clock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    await self.refreshLogged()
                    let reportLoad = clock.now - loadReported >= LoadSnapshot.reportEvery
                    if reportLoad { loadReported = clock.now }
                    await self.report(load: reportLoad)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Re-reads tables, shards, the shard map and the directive, opening shards this router has
    /// not seen; returns whether the map changed.
    @discardableResult
    public func refresh() async throws -> Bool {
        try await adminLock.withLock {
            let tables = try await metadata.tables()
            let records = try await metadata.shards()
            var opened: [ShardID: ShardHandle] = [:]
            let known = snapshot.shards
            for record in records where known[record.id] == nil {
                opened[record.id] = ShardHandle(
                    record: record, store: try await openStore(record),
                    metrics: ShardMetrics(shard: record.id.rawValue, factory: metricsFactory))
                logger.info("learned of a shard", metadata: ["shard": "\(record.id)", "address": "\(record.location.address)"])
            }
            update { state in
                for (id, handle) in opened { state.shards[id] = handle }
            }
            try await adoptTables(tables)
            let changed = try await refreshMapLocked()
            follow(try RouterDirective.decode(try await metadata.directive()))
            return changed
        }
    }

    /// Puts every table of `tables` whose layout is newer than the one in use in force. A table's
    /// layout only moves forward (a rollback publishes the old storage at a newer generation).
    func adoptTables(_ tables: [TableDefinition]) async throws {
        for table in tables { adoptLayout(table) }
    }

    /// Puts the directive in force: holds what a cutover holds, the strategy's modes, the
    /// canary's shadow reads.
    /// (`RouterFleet` publishes it; every router, its own process's included, follows.)
    func follow(_ directive: RouterDirective?) {
        if let hold = directive?.hold, let table = hold.table {
            if hold.generation > (snapshot.tables[table]?.layoutGeneration ?? 0) {
                gate.hold(hold.ranges, table: table)
            } else if gate.isHolding {
                gate.release()
            }
        } else if let hold = directive?.hold, hold.generation > shardMap.generation {
            gate.hold(hold.ranges)
        } else if gate.isHolding {
            gate.release()
        }
        canary.configure(directive?.routes)
        secondWrites.configure(directive?.routes)
        served.configure(directive?.routes)
    }

    /// Re-reads the map (opening any shard it names that this router has not opened, which
    /// needs the shard records first); returns whether a newer map was adopted.
    func refreshMapLocked() async throws -> Bool {
        guard let latest = try await metadata.currentShardMap(), latest.generation > shardMap.generation else { return false }
        let missing = latest.shards.filter { snapshot.shards[$0] == nil }
        if !missing.isEmpty {
            let records = try await metadata.shards()
            for id in missing {
                guard let record = records.first(where: { $0.id == id }) else {
                    throw RouterError(
                        .unavailable, "unknown_shard", "shard map \(latest.generation) names shard \(id), which is not registered")
                }
                let handle = ShardHandle(
                    record: record, store: try await openStore(record), metrics: ShardMetrics(shard: id.rawValue, factory: metricsFactory))
                update { $0.shards[id] = handle }
                logger.info(
                    "learned of a shard from a newer map",
                    metadata: ["shard": "\(id)", "address": "\(record.location.address)", "generation": "\(latest.generation)"])
            }
        }
        let adopted = adopt(latest)
        if adopted, gate.isHolding, let hold = try RouterDirective.decode(try await metadata.directive())?.hold,
            hold.generation <= latest.generation
        {
            gate.release()
        }
        return adopted
    }

    private func refreshLogged() async {
        do {
            try await refresh()
        } catch {
            logger.warning("could not re-read the metadata", metadata: ["error": "\(error)"])
        }
    }

    /// Saves this router's canary and second-write figures while a migration routes through it
    /// (and once after it stops), and, when `load` is true or a migration's figures are saved
    /// anyway, its load of the last windows (for `GET /v1/load` on every router).
    func report(load includeLoad: Bool) async {
        let stats = canary.stats
        let second = secondWrites.stats
        let shadowing = stats.migration != nil && (stats.active || stats.reads > 0)
        let writing = second.migration != nil && (second.active || second.attempts > 0)
        let serving = served.stats
        let reading = serving.migration != nil && (serving.active || serving.served > 0 || serving.sentBack != nil)
        let migrating = shadowing || writing || reading
        // A report replaces the router's last one, so one saved for a migration carries the load
        // too, or the load would vanish from the merged view between load reports.
        let snapshot = migrating || includeLoad ? LoadSnapshot(load, now: wallMillis()) : nil
        // Every few seconds a router reports even when idle, so the routers' list (generation
        // seen, leader) stays current.
        guard migrating || includeLoad else { return }
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let report = RouterReportBody(
                shadow: stats, secondWrites: second.migration == nil ? nil : second, served: serving.migration == nil ? nil : serving,
                load: snapshot, generation: shardMap.generation, leader: migratorLeader)
            let body = String(decoding: try encoder.encode(report), as: UTF8.self)
            try await metadata.saveReport(router: name, report: body)
        } catch {
            logger.warning("could not report this router's figures", metadata: ["error": "\(error)"])
        }
    }
}

/// One router as the metadata last heard from it.
public struct RouterSeen: Sendable, Hashable {
    /// The router's name.
    public var name: String
    /// The map generation it routed by when it last reported; nil for an older router's report.
    public var generation: UInt64?
    /// Whether its process runs the migrations; nil when it runs no migrator or did not say.
    public var leader: Bool?
    /// How long ago it reported, milliseconds (0 for this router, which is asked directly).
    public var ageMillis: UInt64
}

extension ShardRouter {
    /// A router that said nothing for this long (three report intervals) is taken for gone.
    static let silentAfterMillis: UInt64 = 15_000

    /// Every router that reported lately (within `silentAfterMillis`), this one first
    /// with its live figures, then the others by name. Entries that are not a router's report
    /// (a webhook's saved position shares the table) are left out.
    public func routersSeen() async throws -> [RouterSeen] {
        let now = wallMillis()
        var seen = [RouterSeen(name: name, generation: shardMap.generation, leader: migratorLeader, ageMillis: 0)]
        for report in try await metadata.reports().sorted(by: { $0.router < $1.router }) where report.router != name {
            let age = now - min(now, report.savedAtMillis)
            guard age < Self.silentAfterMillis else { continue }
            guard let body = try? JSONDecoder().decode(RouterReportBody.self, from: Data(report.report.utf8)) else { continue }
            seen.append(RouterSeen(name: report.router, generation: body.generation, leader: body.leader, ageMillis: age))
        }
        return seen
    }
}
