import ReshardCore

/// This router's load read against the map in force, and the planner's judgement of it.
public struct LoadView: Sendable {
    public let router: String
    public let generation: UInt64
    /// Complete windows judged (at most the rules' `sustainedWindows`).
    public let windows: Int
    public let report: HotSpotReport
    /// Each shard's most requested keys (`table/key`).
    public let keys: [ShardID: TopKeys]
}

extension ShardRouter {
    /// The load this router measured, judged by `rules` over the shard map in force.
    public func loadView(rules: HotSpotRules) -> LoadView {
        let now = wallMillis()
        let (windows, keys) = load.report(now: now)
        let complete = windows.completeWindows(now: now)
        let map = shardMap
        return LoadView(
            router: name, generation: map.generation, windows: min(complete.count, rules.sustainedWindows),
            report: HotSpotReport(map: map, windows: complete, topKeys: keys, rules: rules), keys: keys)
    }
}
