import Foundation
import Hummingbird
import ReshardAPI
import ReshardCore
import ReshardEngine

/// Admin routes for migrations: create (or dry-run), list, inspect, read the verification report,
/// approve, pause, resume, roll back, change the copy ceiling and the bake.
struct MigrationRoutes {
    let manager: MigrationManager
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
            guard try RequestInput.path(context, "command") == "verification" else {
                throw APIError(
                    .notFound, code: "unknown_report", message: "the report of a migration is at /v1/migrations/{id}/verification")
            }
            guard let status = await manager.status(id) else {
                throw APIError(.notFound, code: "unknown_migration", message: "no migration \(id)")
            }
            return try jsonResponse(.ok, API.VerificationReport(status))
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
}
