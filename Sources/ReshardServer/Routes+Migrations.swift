import Foundation
import Hummingbird
import ReshardAPI
import ReshardCore
import ReshardEngine

/// Admin routes for migrations: create (or dry-run), list, inspect, read the verification report,
/// approve, pause, resume, roll back, change the copy ceiling and the bake.
struct MigrationRoutes {
    let manager: MigrationManager
    /// The router whose foreground latency a migration's report charts.
    let router: ShardRouter
    let maxBodyBytes: Int

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.post("migrations") { request, _ -> Response in
            let body: API.CreateMigration = try await decodeJSON(request, maxBytes: maxBodyBytes)
            // The hot range is found from the routers' load, which only the engine reads.
            let split = body.kind == "split_hot_range" ? try await manager.hotRangeKind(signal: try Self.splitSignal(body)) : nil
            let migration = try Self.migrationRequest(body, splitHotRange: split)
            let (id, preview) = try await manager.create(migration)
            return try jsonResponse(
                id == nil ? .ok : .accepted,
                API.MigrationCreated(id: id, plan: API.Plan(preview, strategy: migration.settings.strategyInForce)))
        }
        group.get("migrations") { _, _ -> Response in
            let all = try await manager.list().map(API.MigrationSummary.init)
            let unreadable = manager.unreadableJournals.sorted { $0.key < $1.key }.map {
                API.MigrationSummary.unreadable(id: $0, reason: $1)
            }
            return try jsonResponse(.ok, API.MigrationList(migrations: all + unreadable))
        }
        group.get("migrations/:id") { _, context -> Response in
            let id = try RequestInput.path(context, "id")
            guard let status = await manager.status(id) else {
                if let reason = manager.unreadableJournals[id] {
                    return try jsonResponse(.ok, API.MigrationStatus.unreadable(.unreadable(id: id, reason: reason)))
                }
                throw APIError(.notFound, code: "unknown_migration", message: "no migration \(id)")
            }
            let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
            return try jsonResponse(.ok, API.MigrationStatus.detail(API.MigrationDetail(status, now: now)))
        }
        // One parameter name per path position (Hummingbird requires it): GET reads reports.
        group.get("migrations/:id/:command") { _, context -> Response in
            let id = try RequestInput.path(context, "id")
            let report = try RequestInput.path(context, "command")
            guard report == "verification" || report == "report" else {
                throw APIError(
                    .notFound, code: "unknown_report",
                    message: "a migration's reports are at /v1/migrations/{id}/verification and /v1/migrations/{id}/report")
            }
            guard let status = await manager.status(id) else {
                throw APIError(.notFound, code: "unknown_migration", message: "no migration \(id)")
            }
            if report == "verification" { return try jsonResponse(.ok, API.VerificationReport(status)) }
            return try jsonResponse(.ok, Self.report(status, router: router))
        }
        group.post("migrations/:id/:command") { request, context -> Response in
            let id = try RequestInput.path(context, "id")
            let name = try RequestInput.path(context, "command")
            let event: MigrationEvent
            switch name {
            case "pause": event = .pause
            case "resume": event = .resume
            case "rollback": event = .rollback
            case "approve": event = .approve(try await approvedGate(request))
            case "settings": event = .adjust(try await adjustment(request))
            default:
                throw APIError(.notFound, code: "unknown_command", message: "commands are approve, pause, resume, rollback and settings")
            }
            switch try await manager.command(id, event) {
            case .accepted:
                guard name == "settings" else {
                    let phase = await manager.status(id)?.machine.phase.rawValue ?? "unknown"
                    return try jsonResponse(.ok, API.CommandResult(id: id, phase: phase))
                }
                guard let machine = await manager.status(id)?.machine else {
                    throw APIError(.notFound, code: "unknown_migration", message: "no migration \(id)")
                }
                return try jsonResponse(
                    .ok,
                    API.MigrationSettingsChanged(
                        id: id, phase: machine.phase.rawValue, maxRowsPerSecond: machine.settings.maxRowsPerSecond,
                        bakeMs: machine.settings.bakeMillis, bakeUntilMs: machine.bakeUntil))
            case .rejected(let reason):
                throw APIError(.conflict, code: "command_rejected", message: reason)
            }
        }
        refuseOtherMethods(on: group, path: "migrations", allowed: [.get, .post])
        refuseOtherMethods(on: group, path: "migrations/:id", allowed: [.get])
        refuseOtherMethods(on: group, path: "migrations/:id/:command", allowed: [.get, .post])
    }

    /// The report's window: a minute either side of the migration, so the chart shows the
    /// foreground before and after it too.
    static let reportMarginSeconds: UInt64 = 60

    static func report(_ status: ReshardEngine.MigrationStatus, router: ShardRouter) -> API.MigrationReport {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let marks = status.machine.phaseLog
        let start = (marks.first?.at ?? now) / 1_000
        let end = status.machine.phase.isTerminal ? (marks.last?.at ?? now) / 1_000 + reportMarginSeconds : .max
        let seconds = router.foregroundLatency(from: start - min(start, reportMarginSeconds)).filter { $0.second <= end }
        return API.MigrationReport(
            migration: API.MigrationDetail(status, now: now), bytesCopied: status.machine.bytesCopied,
            bytesEstimated: status.machine.estimatedBytes, router: router.name,
            latency: seconds.map(API.Dashboard.Second.init))
    }
}
