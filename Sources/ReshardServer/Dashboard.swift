import Foundation
import ReshardAPI
import ReshardCore
import ReshardEngine

/// Builds what `GET /v1/dashboard` answers. However many pages poll, the figures are gathered
/// at most once a second (concurrent callers share one gathering), and the per-shard row and
/// byte counts, which read every table, at most every five seconds.
actor DashboardSource {
    let router: ShardRouter
    let migrations: MigrationManager?
    /// Seconds of foreground latency the dashboard charts.
    static let chartSeconds: UInt64 = 300
    private static let fresh: Duration = .seconds(1)
    private static let countsFresh: Duration = .seconds(5)

    private var last: (at: ContinuousClock.Instant, dashboard: API.Dashboard)?
    private var gathering: Task<API.Dashboard, any Error>?
    private var counts: (at: ContinuousClock.Instant, shards: [ShardID: ShardCounts])?

    struct ShardCounts {
        var rows: Int
        var bytes: Int
        var backend: String
        var changeCapture: String?
        var slots: [API.Dashboard.Slot]
    }

    init(router: ShardRouter, migrations: MigrationManager?) {
        self.router = router
        self.migrations = migrations
    }

    func dashboard() async throws -> API.Dashboard {
        if let last, ContinuousClock.now - last.at < Self.fresh { return last.dashboard }
        if let gathering { return try await gathering.value }
        let task = Task { try await self.gather() }
        gathering = task
        defer { gathering = nil }
        let dashboard = try await task.value
        last = (ContinuousClock.now, dashboard)
        return dashboard
    }

    private func shardCounts() async throws -> [ShardID: ShardCounts] {
        if let counts, ContinuousClock.now - counts.at < Self.countsFresh { return counts.shards }
        var shards: [ShardID: ShardCounts] = [:]
        for shard in try await router.cluster().shards {
            // Slots are asked here, with the counts, so a page polling every second costs each
            // shard one query every few seconds at most.
            let slots = (try? await router.store(shard.id)?.replicationSlots()) ?? []
            shards[shard.id] = ShardCounts(
                rows: shard.rows, bytes: shard.bytes, backend: shard.backend, changeCapture: shard.changeCapture,
                slots: slots.map { API.Dashboard.Slot(name: $0.name, active: $0.active, retainedBytes: $0.retainedBytes) })
        }
        counts = (ContinuousClock.now, shards)
        return shards
    }

    private func gather() async throws -> API.Dashboard {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let map = router.shardMap
        let counts = try await shardCounts()
        let shards = counts.keys.sorted().map { id in
            let count = counts[id]
            let traffic = router.shardTraffic(id)
            return API.Dashboard.Shard(
                id: id.rawValue, backend: count?.backend ?? "unknown", rows: count?.rows ?? 0, bytes: count?.bytes ?? 0,
                fraction: map.fraction(ownedBy: id), requestsPerSecond: traffic.requestsPerSecond,
                p99Ms: traffic.p99Micros.map { Double($0) / 1_000 }, changeCapture: count?.changeCapture, slots: count?.slots ?? [])
        }
        let machines = try await migrations?.machines() ?? []
        let history = machines.map { status in
            let marks = status.machine.phaseLog
            return API.Dashboard.Run(
                id: status.machine.id, kind: status.machine.plan.kind.name, phase: status.machine.phase.rawValue,
                startedMs: marks.first?.at, endedMs: status.machine.phase.isTerminal ? marks.last?.at : nil,
                rowsCopied: status.machine.rowsCopied)
        }
        var migration: API.Dashboard.Migration?
        // The migration under way, else the last one, so an ended migration's outcome stays in view.
        if let shown = machines.last(where: { !$0.machine.phase.isTerminal }) ?? machines.last, let migrations,
            let status = await migrations.status(shown.machine.id)
        {
            let moves = status.machine.plan.moves.map {
                API.Dashboard.Move(start: $0.range.startHex, end: $0.range.endHex, from: $0.source.rawValue, to: $0.target.rawValue)
            }
            migration = API.Dashboard.Migration(
                API.MigrationDetail(status, now: now), moves: moves, verification: API.VerificationReport(status).moves,
                bytesCopied: status.machine.bytesCopied, bytesEstimated: status.machine.estimatedBytes)
        }
        let routers = try await router.routersSeen().map {
            API.Dashboard.Router(name: $0.name, generation: $0.generation, leader: $0.leader, ageMs: $0.ageMillis)
        }
        let since = now / 1_000 - min(now / 1_000, Self.chartSeconds)
        let latency = router.foregroundLatency(from: since).map(API.Dashboard.Second.init)
        return API.Dashboard(
            version: BuildInfo.version, nowMs: now, generation: map.generation, router: router.name,
            ranges: map.assignments.map { API.RangeAssignment(start: $0.range.startHex, end: $0.range.endHex, shard: $0.shard.rawValue) },
            shards: shards, migration: migration, history: history, routers: routers, latency: latency)
    }
}

extension API.Dashboard.Second {
    init(_ second: LatencySecond) {
        self.init(
            atMs: second.second * 1_000, requests: second.count, p50Ms: Double(second.p50Micros) / 1_000,
            p99Ms: Double(second.p99Micros) / 1_000, maxMs: Double(second.maxMicros) / 1_000)
    }
}
