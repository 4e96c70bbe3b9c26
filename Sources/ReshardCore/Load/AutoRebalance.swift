/// When the migrator starts a load rebalance on its own (`auto_rebalance`, off by default):
/// only on the hot-spot planner's `move` finding (a shard hot in each of the last windows, no
/// single key the heat, a move worth its cost), only while no migration runs, and only once the
/// last migration has been over for `cooldownMillis`, so the load measured is the load under the
/// map now in force and ranges do not flap.
public struct AutoRebalancePolicy: Sendable, Hashable {
    public var rules: HotSpotRules
    public var cooldownMillis: UInt64

    public init(rules: HotSpotRules = HotSpotRules(), cooldownMillis: UInt64 = 60_000) {
        self.rules = rules
        self.cooldownMillis = cooldownMillis
    }

    /// Whether to start now: `finding` over the routers' load, whether a migration is active,
    /// and when the last one ended (wall milliseconds; nil when none has).
    public func shouldStart(finding: HotSpotFinding, migrationActive: Bool, lastEndedMillis: UInt64?, now: UInt64) -> Bool {
        guard !migrationActive, case .move = finding else { return false }
        guard let lastEndedMillis else { return true }
        return now >= lastEndedMillis && now - lastEndedMillis >= cooldownMillis
    }
}
