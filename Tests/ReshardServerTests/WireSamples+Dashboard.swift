import ReshardAPI

/// `GET /v1/dashboard`'s types, for `WireSchemaTests`.
extension WireSamples {
    static let dashboard: [Sample] = [
        Sample(schema: "Dashboard", minimal: dashboard(full: false), full: dashboard(full: true)),
        Sample(schema: "DashboardShard", minimal: dashboardShard(full: false), full: dashboardShard(full: true)),
        Sample(schema: "DashboardMove", minimal: dashboardMove, full: dashboardMove),
        Sample(
            schema: "DashboardSlot", minimal: API.Dashboard.Slot(name: "s", active: false, retainedBytes: nil),
            full: API.Dashboard.Slot(name: "s", active: true, retainedBytes: 1)),
        Sample(schema: "DashboardMigration", minimal: dashboardMigration(full: false), full: dashboardMigration(full: true)),
        Sample(schema: "DashboardRun", minimal: dashboardRun(full: false), full: dashboardRun(full: true)),
        Sample(schema: "DashboardRouter", minimal: dashboardRouter(full: false), full: dashboardRouter(full: true)),
        Sample(schema: "DashboardSecond", minimal: dashboardSecond, full: dashboardSecond),
        Sample(
            schema: "MigrationReport",
            minimal: API.MigrationReport(migration: detail(full: false), bytesCopied: 0, bytesEstimated: nil, router: "r1", latency: []),
            full: API.MigrationReport(
                migration: detail(full: true), bytesCopied: 300, bytesEstimated: 900, router: "r1", latency: [dashboardSecond])),
    ]

    static let dashboardMove = API.Dashboard.Move(start: "0x0000000000000000", end: "0x0100000000000000", from: "s1", to: "s5")
    static let dashboardSecond = API.Dashboard.Second(atMs: 1_796_000_000_000, requests: 90, p50Ms: 0.4, p99Ms: 2.5, maxMs: 7)

    static func dashboardShard(full: Bool) -> API.Dashboard.Shard {
        API.Dashboard.Shard(
            id: "s1", backend: "sqlite", rows: 10, bytes: 300, fraction: 0.25, requestsPerSecond: full ? 12.5 : 0, p99Ms: full ? 1.5 : nil,
            changeCapture: full ? "logical decoding" : nil,
            slots: full ? [API.Dashboard.Slot(name: "reshard_m1_ab12", active: true, retainedBytes: 4_096)] : [])
    }

    static func dashboardMigration(full: Bool) -> API.Dashboard.Migration {
        var status = detail(full: full)
        // The dashboard's view keeps counts only: the detail's error text must not reach it.
        status.error = full ? "a step failed" : nil
        return API.Dashboard.Migration(
            status, moves: [dashboardMove], verification: full ? [moveVerification(full: true)] : [], bytesCopied: 300,
            bytesEstimated: full ? 900 : nil)
    }

    static func dashboardRun(full: Bool) -> API.Dashboard.Run {
        API.Dashboard.Run(
            id: "m1", kind: "add_shard", phase: full ? "done" : "copying", startedMs: full ? 1 : nil, endedMs: full ? 9 : nil, rowsCopied: 3
        )
    }

    static func dashboardRouter(full: Bool) -> API.Dashboard.Router {
        API.Dashboard.Router(name: "r1", generation: full ? 2 : nil, leader: full ? true : nil, ageMs: 0)
    }

    static func dashboard(full: Bool) -> API.Dashboard {
        API.Dashboard(
            version: "0.20.0", nowMs: 1_796_000_000_500, generation: 2, router: "r1", ranges: [range], shards: [dashboardShard(full: full)],
            migration: full ? dashboardMigration(full: true) : nil, history: [dashboardRun(full: full)],
            routers: [dashboardRouter(full: full)], latency: [dashboardSecond])
    }
}
