import Metrics
import ReshardCore

/// The gauges of one migration. A state shown as one series per value, 1 for the current one and
/// 0 for the others (phase, gate awaited, throttle cause), rather than a number to decode: an
/// alert then names what it means (`phase="catching_up"`), and because every value's series
/// exists from the start, `min_over_time(…[30m]) == 1` says "in this phase for the whole 30
/// minutes" (a series that appeared five minutes ago would pass that test too).
struct MigrationSeries {
    private let id: String
    private let factory: any MetricsFactory
    private let phases: [MigrationPhase: Gauge]
    private let gates: [MigrationPhase: Gauge]
    private let throttled: [Throttle.Cause: Gauge]
    private let phaseStarted: Gauge
    private let rowsCopied: Gauge
    private let bytesCopied: Gauge
    private let cutoverAttempts: Gauge
    private let verifications: Gauge
    private let rowsRepaired: Gauge
    private let unresolved: Gauge
    /// Made when first known: a gauge shows 0 from its creation, which would read as a figure.
    private var rowsEstimated: Gauge?
    private var bytesEstimated: Gauge?
    private var chunkRows: Gauge?
    private var lagChanges: [MigrationGauges.Stream: Gauge] = [:]
    private var lagSeconds: [MigrationGauges.Stream: Gauge] = [:]
    /// Whether the last phase shown ends the migration.
    private(set) var ended = false

    init(id: String, kind: String, factory: any MetricsFactory) {
        self.id = id
        self.factory = factory
        func gauge(_ name: String, _ extra: [(String, String)] = []) -> Gauge {
            Gauge(label: name, dimensions: [("migration", id)] + extra, factory: factory)
        }
        phases = Dictionary(
            uniqueKeysWithValues: MigrationPhase.allCases.map {
                ($0, gauge("reshard_migration_phase", [("kind", kind), ("phase", $0.rawValue)]))
            })
        gates = Dictionary(
            uniqueKeysWithValues: MigrationPhase.gateable.map {
                ($0, gauge("reshard_migration_awaiting_approval", [("gate", $0.gateName)]))
            })
        throttled = Dictionary(
            uniqueKeysWithValues: Throttle.Cause.allCases.map { ($0, gauge("reshard_migration_throttled", [("reason", $0.rawValue)])) })
        phaseStarted = gauge("reshard_migration_phase_started_timestamp_seconds")
        rowsCopied = gauge("reshard_migration_rows_copied")
        bytesCopied = gauge("reshard_migration_bytes_copied")
        cutoverAttempts = gauge("reshard_migration_cutover_attempts")
        verifications = gauge("reshard_migration_verifications")
        rowsRepaired = gauge("reshard_migration_rows_repaired")
        unresolved = gauge("reshard_migration_unresolved_differences")
    }

    mutating func show(_ values: MigrationGauges) {
        ended = values.phase.isTerminal
        for (phase, gauge) in phases { gauge.record(phase == values.phase ? 1 : 0) }
        for (gate, gauge) in gates { gauge.record(gate == values.awaiting ? 1 : 0) }
        for (cause, gauge) in throttled { gauge.record(cause == values.throttle ? 1 : 0) }
        if let since = values.phaseSinceMillis { phaseStarted.record(Double(since) / 1_000) }
        rowsCopied.record(values.rowsCopied)
        bytesCopied.record(values.bytesCopied)
        cutoverAttempts.record(values.cutoverAttempts)
        verifications.record(values.verifications)
        rowsRepaired.record(values.rowsRepaired)
        unresolved.record(values.unresolved)
        if let rows = values.rowsEstimated {
            rowsEstimated = rowsEstimated ?? make("reshard_migration_rows_estimated")
            rowsEstimated?.record(rows)
        }
        if let bytes = values.bytesEstimated {
            bytesEstimated = bytesEstimated ?? make("reshard_migration_bytes_estimated")
            bytesEstimated?.record(bytes)
        }
        if let rows = values.chunkRows {
            chunkRows = chunkRows ?? make("reshard_migration_throttle_chunk_rows")
            chunkRows?.record(rows)
        }
        for (stream, lag) in values.lag {
            let labels = [("direction", stream.direction.rawValue), ("shard", stream.shard.rawValue)]
            let changes = lagChanges[stream] ?? make("reshard_migration_cdc_lag_changes", labels)
            let seconds = lagSeconds[stream] ?? make("reshard_migration_cdc_lag_seconds", labels)
            lagChanges[stream] = changes
            lagSeconds[stream] = seconds
            // A backlog never read yet is unknown, not zero: NaN compares false in every alert.
            changes.record(lag.changes.map(Double.init) ?? .nan)
            seconds.record(Double(lag.millis) / 1_000)
        }
    }

    private func make(_ name: String, _ extra: [(String, String)] = []) -> Gauge {
        Gauge(label: name, dimensions: [("migration", id)] + extra, factory: factory)
    }

    /// Removes every series of the migration from the registry.
    func destroy() {
        let all: [Gauge] =
            Array(phases.values) + Array(gates.values) + Array(throttled.values) + [
                phaseStarted, rowsCopied, bytesCopied, cutoverAttempts, verifications, rowsRepaired, unresolved,
            ] + [rowsEstimated, bytesEstimated, chunkRows].compactMap { $0 } + Array(lagChanges.values) + Array(lagSeconds.values)
        for gauge in all { gauge.destroy() }
    }
}
