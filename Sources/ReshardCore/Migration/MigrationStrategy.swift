/// How a migration moves data while clients use it (DESIGN.md, "Strategies"). A strategy is a
/// table of phases, each with what the routers do to the moving ranges meanwhile; the machine's
/// exit criteria and work per phase are shared, so a strategy is data, not a code path.
public enum MigrationStrategy: String, Hashable, Sendable, Codable, CaseIterable {
    /// Chunked snapshot copy plus changelog catch-up; writes stay on the old owner until the
    /// cutover. The default.
    case cdcBackfill = "cdc_backfill"
    /// The router writes each client write to the old owner, then to the new one with the same
    /// version; backfill copies the rest.
    case dualWrite = "dual_write"
    /// Writes switch to the new owner first; reads take the newer of both sides while a repair
    /// worker copies what the new owner lacks.
    case writeNewReadOld = "write_new_read_old"
    /// The map switches first; a read the new owner misses is answered by the old one and the
    /// row copied on access; a background mover copies the rest.
    case routingFirst = "routing_first"
    /// The router records client writes to the moving ranges and they are replayed on the new
    /// owner after a backfill, reads shadow-compared until it answers like the old one.
    case trafficReplay = "traffic_replay"

    /// The strategy's table, in the order the migration runs it (paused, failed, rolling back
    /// and the ends are outside every table).
    public var steps: [StrategyStep] {
        switch self {
        case .cdcBackfill:
            [
                StrategyStep(
                    .preparing, .unchanged,
                    does: "creates the tables on the new owners and opens a change stream on every shard of the plan",
                    until: "every stream is open and its position read"),
                StrategyStep(
                    .copying, .unchanged, does: "copies the moving ranges chunk by chunk under the version rule, paced by the throttle",
                    until: "every chunk of every table is copied"),
                StrategyStep(
                    .catchingUp, .unchanged, does: "applies the old owners' changelogs to the new owners",
                    until: "every old owner's backlog is under max_lag_changes and max_lag_ms"),
                StrategyStep(
                    .verifying, .unchanged, does: "compares both sides at consistent positions, repairs what differs, runs the checks",
                    until: "the comparison is clean"),
                StrategyStep(
                    .canary, .shadowReads, does: "shadow-reads each canary step's share of reads from the new owners and compares",
                    until: "every step passed with no mismatch"),
                StrategyStep(
                    .cuttingOver, .held, does: "holds writes, fences the old owners, drains, publishes the new map, releases",
                    until: "the new map is published and held writes released"),
                StrategyStep(
                    .baking, .switched, does: "replicates the new owners' changes back to the old owners, so rollback stays possible",
                    until: "bake_ms has passed"),
                StrategyStep(
                    .cleaningUp, .switched, does: "deletes the moved rows from the old owners and purges old tombstones",
                    until: "nothing moved is left on an old owner"),
            ]
        case .dualWrite, .writeNewReadOld, .routingFirst, .trafficReplay:
            []
        }
    }

    /// Whether migrations may use it yet.
    public var isAvailable: Bool { !steps.isEmpty }

    /// The phase that follows `phase` in the table, skipping what `skip` leaves out (a canary
    /// without steps); nil after the last (the migration is done) or for a phase not in it.
    public func phase(after phase: MigrationPhase, skip: Set<MigrationPhase> = []) -> MigrationPhase? {
        let phases = steps.map(\.phase)
        guard let index = phases.firstIndex(of: phase) else { return nil }
        return phases[(index + 1)...].first { !skip.contains($0) }
    }

    /// The table's row for `phase`, if the strategy has one.
    public func step(_ phase: MigrationPhase) -> StrategyStep? { steps.first { $0.phase == phase } }
}

/// One row of a strategy's table.
public struct StrategyStep: Hashable, Sendable {
    /// The phase.
    public let phase: MigrationPhase
    /// What routers do to the moving ranges during it.
    public let routes: RouteModes
    /// What the migrator does in it.
    public let does: String
    /// Its exit criterion.
    public let until: String

    init(_ phase: MigrationPhase, _ routes: RouteModes, does: String, until: String) {
        self.phase = phase
        self.routes = routes
        self.does = does
        self.until = until
    }
}

/// Where routers send the moving ranges' writes and reads during a phase.
public struct RouteModes: Hashable, Sendable, Codable {
    /// Where writes go.
    public enum Writes: String, Hashable, Sendable, Codable {
        /// To the owner the current map names.
        case owner
        /// Held at the router until the new map is in force (the cutover's critical section).
        case held
    }

    /// Where reads come from.
    public enum Reads: String, Hashable, Sendable, Codable {
        /// From the owner the current map names.
        case owner
        /// From the owner, and the canary's share also from the new owner, compared.
        case ownerWithShadow
    }

    /// Where writes go.
    public let writes: Writes
    /// Where reads come from.
    public let reads: Reads

    /// A mode.
    public init(writes: Writes, reads: Reads) {
        self.writes = writes
        self.reads = reads
    }

    /// Before any switch: the map's owner for both.
    public static let unchanged = RouteModes(writes: .owner, reads: .owner)
    /// The canary: writes as before, reads shadow-compared.
    public static let shadowReads = RouteModes(writes: .owner, reads: .ownerWithShadow)
    /// The cutover's hold.
    public static let held = RouteModes(writes: .held, reads: .owner)
    /// After the switch: the new map's owner (the new owner) for both.
    public static let switched = RouteModes(writes: .owner, reads: .owner)
}
