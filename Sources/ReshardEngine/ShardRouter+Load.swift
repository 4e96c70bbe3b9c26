import Foundation
import ReshardCore

/// This router's load read against the map in force, and the planner's judgement of it.
public struct LoadView: Sendable {
    public let router: String
    /// The routers whose load is in the view: this one first, then the others that reported.
    public let routers: [String]
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
        return judge(windows: windows, keys: keys, routers: [name], now: now, rules: rules)
    }

    /// The load of every router: this one's as it stands and every other's as of its last
    /// report (`LoadSnapshot`), judged by `rules` over the map in force.
    public func clusterLoadView(rules: HotSpotRules) async throws -> LoadView {
        let load = try await clusterLoad()
        return judge(windows: load.windows, keys: load.keys, routers: load.routers, now: load.judgedAt, rules: rules)
    }

    /// Every router's windows and top keys merged, and the moment to judge them at: the oldest
    /// report merged, so a window another router has not reported yet does not look cool.
    /// Reports over a minute old (a router that stopped) and damaged ones are left out.
    public func clusterLoad() async throws -> (windows: LoadWindows, keys: [ShardID: TopKeys], routers: [String], judgedAt: UInt64) {
        let now = wallMillis()
        var (windows, keys) = load.report(now: now)
        var routers = [name]
        var judgedAt = now
        for report in try await metadata.reports().sorted(by: { $0.router < $1.router }) where report.router != name {
            guard let body = try? JSONDecoder().decode(RouterReportBody.self, from: Data(report.report.utf8)), let snapshot = body.load,
                now - min(now, snapshot.asOfMillis) < LoadSnapshot.staleAfterMillis
            else { continue }
            guard snapshot.merge(into: &windows, keys: &keys, now: now) else {
                logger.warning("left out a router's load report that does not hold together", metadata: ["router": "\(report.router)"])
                continue
            }
            routers.append(report.router)
            judgedAt = min(judgedAt, snapshot.asOfMillis)
        }
        return (windows, keys, routers, judgedAt)
    }

    private func judge(windows: LoadWindows, keys: [ShardID: TopKeys], routers: [String], now: UInt64, rules: HotSpotRules) -> LoadView {
        let complete = windows.completeWindows(now: now)
        let map = shardMap
        return LoadView(
            router: name, routers: routers, generation: map.generation, windows: min(complete.count, rules.sustainedWindows),
            report: HotSpotReport(map: map, windows: complete, topKeys: keys, rules: rules), keys: keys)
    }
}
