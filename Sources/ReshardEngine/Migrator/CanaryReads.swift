import ReshardCore

/// The migrator's side of the canary: puts the machine's canary in the routers' directive, and
/// reads what every router's shadow reads found. Whether a step passes is the machine's call.
struct CanaryReads: Sendable {
    let migration: String
    let routers: any RouterControl

    /// Shows `directive` to every router (nil: routers route the moving ranges by the map).
    func show(_ directive: RouteDirective?) async throws -> MigrationEvent {
        try await routers.publishDirective { $0.routes = directive }
        return .routesShown(directive)
    }

    /// The first real mismatch any router recorded from `since` (the canary's start: earlier
    /// ones belong to a canary that was already halted and verified again) up to `upTo`, or the
    /// first router that sent its served reads back in that time; this process's router first,
    /// then the others as of their latest report.
    func check(since: UInt64, upTo: UInt64) async throws -> MigrationEvent {
        for (router, stats) in try await routers.servedReads(migration: migration) {
            if let reason = stats.sentBack, let at = stats.sentBackAt, at >= since, at <= upTo {
                return .readsSentBack("\(reason) (router \(router))")
            }
        }
        for (router, stats) in try await routers.shadowReads(migration: migration) {
            if let mismatch = stats.recent.first(where: { $0.outcome.isMismatch && $0.at >= since && $0.at <= upTo }) {
                return .shadowMismatch("\(mismatch.description) (router \(router))")
            }
        }
        return .shadowReadsChecked(upTo: upTo)
    }
}
