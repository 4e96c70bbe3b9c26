import Foundation
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// The copy rate of one migration on this machine, measured as the copy scenario does: one
/// shard's rows moved to an empty shard by a live `move_range`, throttle off, and the peak
/// memory of the process while it ran.
struct ScaleCopy: Codable, Sendable {
    let backend: String
    let rows: Int
    let bytesPerRow: Double
    let copySeconds: Double
    let rowsPerSecond: Double
    let peakMemoryBytes: Int
    /// Resident when the move started: the peak minus this is what the move added.
    let residentAtStartBytes: Int

    /// What the move added to the process at its peak.
    var addedMemoryBytes: Int { max(0, peakMemoryBytes - residentAtStartBytes) }

    static func measure(backend: ShardBackend, servers: [PostgresEndpoint], rows: Int) async throws -> ScaleCopy {
        try await withBenchCluster("scale", backend: backend, shards: 1, servers: servers) { cluster, manager in
            let target = try await cluster.addShard(index: 2)
            say("scale, \(backend.rawValue): loading \(grouped(rows)) rows into s1 …")
            let bytes = try await BenchData.load(cluster, table: benchTable, rows: rows)
            PeakMemory.reset()
            let resident = PeakMemory.currentBytes
            let started = ContinuousClock.now
            let status = try await BenchMigration.run(
                manager, .moveRange(.full, to: target), settings: BenchMigration.settings(latencyFactor: nil), label: "s1 → s2",
                showProgress: true
            ).status
            let total = seconds(since: started)
            let peak = PeakMemory.peakBytes
            let copy = BenchMigration.spans(status.machine, now: wallMillis()).first { $0.phase == MigrationPhase.copying.rawValue }
            let copySeconds = max(0.001, copy?.seconds ?? total)
            let copied = status.machine.rowsCopied
            let result = ScaleCopy(
                backend: backend.rawValue, rows: copied, bytesPerRow: Double(bytes) / Double(max(1, rows)), copySeconds: copySeconds,
                rowsPerSecond: Double(copied) / copySeconds, peakMemoryBytes: peak,
                residentAtStartBytes: resident)
            say(
                String(
                    format: "  copied %@ rows in %.2f s: %.0f rows/s, peak memory %.0f MiB (%.0f MiB over the start)",
                    grouped(copied) as NSString, copySeconds, result.rowsPerSecond, PeakMemory.megabytes(peak),
                    PeakMemory.megabytes(result.addedMemoryBytes)))
            return result
        }
    }
}
