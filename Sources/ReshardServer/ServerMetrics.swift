import Metrics
import ReshardAPI
import ReshardEngine

/// The process's own series, set when `/metrics` is scraped: each is a value the router already
/// holds in memory, so a scrape costs no I/O and no request pays for them.
///
/// - `reshard_build_info{version,swift}` 1: which build answers (its labels, not its value).
/// - `reshard_map_generation{router}`: the map this router routes by; routers that disagree for
///   long missed a notification.
/// - `reshard_canary_halted{router}` 1 while a real shadow mismatch keeps this router's canary
///   stopped (reads stay on the old owners), until a resume or the next migration.
/// - `reshard_reads_sent_back{router}` 1 while this router has sent reads back to the old owners
///   (the new owners' errors or latency passed their thresholds during `serving_reads`).
final class ServerMetrics: Sendable {
    private let router: ShardRouter
    private let generation: Gauge
    private let canaryHalted: Gauge
    private let readsSentBack: Gauge

    init(router: ShardRouter, factory: any MetricsFactory) {
        self.router = router
        let labels = [("router", router.name)]
        generation = Gauge(label: "reshard_map_generation", dimensions: labels, factory: factory)
        canaryHalted = Gauge(label: "reshard_canary_halted", dimensions: labels, factory: factory)
        readsSentBack = Gauge(label: "reshard_reads_sent_back", dimensions: labels, factory: factory)
        Gauge(
            label: "reshard_build_info", dimensions: [("version", BuildInfo.version), ("swift", BuildInfo.swiftVersion)],
            factory: factory
        ).record(1)
        refresh()
    }

    /// Reads the figures now.
    func refresh() {
        generation.record(Double(router.shardMap.generation))
        canaryHalted.record(router.canary.stats.halted ? 1 : 0)
        readsSentBack.record(router.served.stats.sentBack == nil ? 0 : 1)
    }
}
