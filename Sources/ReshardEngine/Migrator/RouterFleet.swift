import Foundation
import ReshardCore
import ReshardStore
import Synchronization

/// The migrator's side of the routers, kept out of the router (which only routes and follows):
/// the directive every router follows (holds, the canary) is published here, saved in the
/// metadata for routers of other processes and put in force in this process's router at once;
/// the routers' shadow-read reports are read here.
public final class RouterFleet: RouterControl {
    private let router: ShardRouter
    private let metadata: any MetadataStore
    /// The directive as this process last published it.
    private let directive = Mutex(RouterDirective())
    /// Work items of one round run side by side (a canary directive beside a release of held
    /// writes): one read-change-save at a time, each on the last one's result.
    private let lock = AsyncSerialLock()

    /// The fleet `router` belongs to, sharing `metadata`.
    public init(router: ShardRouter, metadata: any MetadataStore) {
        self.router = router
        self.metadata = metadata
    }

    /// Makes this process's view current before it starts running migrations: a router that
    /// ignored notifications (or missed some) may not know the shards a journaled migration
    /// names, and the directive a dead migrator left (a hold, a canary) becomes this process's to
    /// change. Without the latter, a new migrator that clears a hold would compare against its
    /// own empty directive, find nothing to save, and leave every other router holding writes.
    public func prepareToLead() async throws {
        try await router.refresh()
        let published = try RouterDirective.decode(try await metadata.directive()) ?? RouterDirective()
        directive.withLock { $0 = published }
    }

    public func publishDirective(_ change: (inout RouterDirective) -> Void) async throws {
        try await lock.withLock {
            let before = directive.withLock { $0 }
            var after = before
            change(&after)
            guard before != after else { return }
            // Remembered only once saved: a failed save is retried by the step, and must not look done.
            try await metadata.saveDirective(try after.encoded())
            directive.withLock { $0 = after }
            router.follow(after)
        }
    }

    public func releaseHeldWrites() { router.gate.release() }

    public func takeWritePauses() -> PauseSummary { router.gate.takePauses() }

    public func adopt(_ map: ShardMap) -> Bool { router.adopt(map) }

    public func refreshShardMap() async throws -> Bool { try await router.refreshShardMap() }

    public func adoptLayout(_ table: TableDefinition) -> Bool { router.adoptLayout(table) }

    public var foregroundP99Micros: UInt64? { router.foregroundP99Micros }

    /// The second writes (and recorded writes) of every router for `migration`: this process's
    /// router as it stands, every other router as of its latest report, summed. Active when any
    /// router writes both owners or records now.
    public func secondWrites(migration: String) async throws -> SecondWrites.Stats {
        var total = SecondWrites.Stats(migration: migration)
        func add(_ stats: SecondWrites.Stats) {
            guard stats.migration == migration else { return }
            total.active = total.active || stats.active
            total.attempts += stats.attempts
            total.written += stats.written
            total.queued += stats.queued
            total.unqueued += stats.unqueued
            total.recorded += stats.recorded
            total.unrecorded += stats.unrecorded
        }
        add(router.secondWrites.stats)
        for report in try await metadata.reports() where report.router != router.name {
            guard let body = try? JSONDecoder().decode(RouterReportBody.self, from: Data(report.report.utf8)), let stats = body.secondWrites
            else { continue }
            add(stats)
        }
        return total
    }

    /// This process's router first, then every other router as of its latest report.
    public func shadowReads(migration: String) async throws -> [(router: String, stats: ShadowReads.Stats)] {
        try await reported(migration: migration, local: router.canary.stats) { $0.shadow }
    }

    /// This process's router first, then every other router as of its latest report.
    public func servedReads(migration: String) async throws -> [(router: String, stats: ServedReads.Stats)] {
        try await reported(migration: migration, local: router.served.stats) { $0.served }
    }

    /// One kind of figures of every router for `migration`: `local` for this process's router,
    /// `part` of the latest report of every other.
    private func reported<Stats: MigrationFigures>(
        migration: String, local: Stats, _ part: (RouterReportBody) -> Stats?
    ) async throws -> [(router: String, stats: Stats)] {
        var result: [(router: String, stats: Stats)] = []
        if local.migration == migration { result.append((router.name, local)) }
        for report in try await metadata.reports().sorted(by: { $0.router < $1.router }) where report.router != router.name {
            guard let body = try? JSONDecoder().decode(RouterReportBody.self, from: Data(report.report.utf8)),
                let stats = part(body), stats.migration == migration
            else { continue }
            result.append((report.router, stats))
        }
        return result
    }
}

/// Figures a router keeps per migration.
protocol MigrationFigures {
    var migration: String? { get }
}

extension ShadowReads.Stats: MigrationFigures {}
extension ServedReads.Stats: MigrationFigures {}
