import Foundation

/// The JSON and tables of one scale estimate: what was measured, then what it predicts.
struct ScaleReport: BenchResult, Codable {
    /// One map's own costs, no I/O.
    struct MapFigures: Codable, Sendable {
        let label: String
        let shards: Int
        let virtualNodes: Int
        let ranges: Int
        let buildMillis: Double
        let lookupNanos: Double
        let lookups: Int
        let runs: Int
        let jsonBytes: Int
        let encodeMillis: Double
        let decodeMillis: Double
    }

    /// One plan's prediction from one backend's rates.
    struct Prediction: Codable, Sendable {
        let plan: String
        let backend: String
        let model: ScaleModel
        /// What the measured move added to the process at its peak.
        let moveAddedBytes: Int
    }

    var benchmark = "scale"
    let date: String
    let shards: Int
    let rows: Int
    let quick: Bool
    /// Evenly spaced hashes the balanced add was planned on.
    let balancedSample: Int
    let maps: [MapFigures]
    let metadata: [ScaleMetadata.Figures]
    let copies: [ScaleCopy]
    let predictions: [Prediction]
    let skipped: String?
    let seconds: Double

    func write(to folder: String) throws -> String { try BenchResultFile.write(self, name: benchmark, date: date, to: folder) }

    /// The publish of the N-shard add's map is one step of the cutover's write hold, whose p99
    /// target is under 10 ms (scenario 3): a publish alone slower than that cannot meet it.
    var checks: [TargetCheck] {
        metadata.filter { $0.plan == "add_shard (ring)" }.map { figures in
            TargetCheck.below(
                "map publish of add_shard at \(grouped(shards)) shards (a step of the cutover pause)", figures.metadata,
                figures.publishMillis, 10, unit: "ms",
                detail: String(format: "%@ ranges, median of %d publishes", grouped(figures.ranges) as NSString, figures.samples))
        }
    }

    var markdown: String {
        var lines = ["**Measured on this machine**", ""]
        lines += [
            "| map | shards × points | ranges | build ms | lookup ns | JSON KiB | encode ms | decode ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for map in maps {
            lines.append(
                String(
                    format: "| %@ | %@ × %d | %@ | %.1f | %.1f | %.0f | %.1f | %.1f |", map.label as NSString,
                    grouped(map.shards) as NSString,
                    map.virtualNodes, grouped(map.ranges) as NSString, map.buildMillis, map.lookupNanos, Double(map.jsonBytes) / 1_024,
                    map.encodeMillis, map.decodeMillis))
        }
        lines += [
            "",
            "| metadata | published plan | ranges after | publish ms | router pickup ms | snapshot after the hold ms | journal plan KiB | plan save ms | journal rest KiB | rest save ms |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for figures in metadata {
            lines.append(
                String(
                    format: "| %@ | %@ | %@ | %.2f | %.2f | %.2f | %.0f | %.2f | %.1f | %.2f |", figures.metadata as NSString,
                    figures.plan as NSString, grouped(figures.ranges) as NSString, figures.publishMillis, figures.pickupMillis,
                    figures.snapshotMillis, Double(figures.planBytes) / 1_024, figures.planSaveMillis, Double(figures.journalBytes) / 1_024,
                    figures.journalSaveMillis))
        }
        lines += [
            "", "| copy (one migration, 1 source → 1 target) | rows | bytes/row | rows/s | MB/s | peak MiB | added MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for copy in copies {
            lines.append(
                String(
                    format: "| %@ | %@ | %.0f | %.0f | %.1f | %.0f | %.0f |", copy.backend as NSString, grouped(copy.rows) as NSString,
                    copy.bytesPerRow, copy.rowsPerSecond, copy.rowsPerSecond * copy.bytesPerRow / 1e6,
                    PeakMemory.megabytes(copy.peakMemoryBytes), PeakMemory.megabytes(copy.addedMemoryBytes)))
        }
        lines += [
            "",
            "add_shard (ring) is the plan `reshard` runs for add_shard (`MigrationPlanner.plan(.addShard)`): the arcs the newcomer's 256 points capture. Balanced add is `MigrationPlanner.balancedAdd` (no API path runs it today) on \(grouped(balancedSample)) evenly spaced hashes: the newcomer takes exactly 1/(N+1) from the fullest shards down, so only the shards above the water level give.",
        ]
        for backend in Set(predictions.map(\.backend)).sorted() {
            lines += ["", predictionTable(predictions.filter { $0.backend == backend }, backend: backend)]
        }
        if let model = predictions.first?.model {
            lines += ["", "Assumptions:"] + model.assumptions.map { "- " + $0 }
        }
        if let skipped { lines += ["", "PostgreSQL skipped: \(skipped)"] }
        if !checks.isEmpty { lines += ["", TargetCheck.markdown(checks)] }
        return lines.joined(separator: "\n")
    }

    private func predictionTable(_ predictions: [Prediction], backend: String) -> String {
        let header = "| **predicted**, \(backend): add 1 shard to \(grouped(shards)) with \(ScaleCount.plain(rows)) rows | "
        var lines = [
            header + predictions.map(\.plan).joined(separator: " | ") + " |",
            "| --- |" + String(repeating: " ---: |", count: predictions.count),
        ]
        func row(_ name: String, _ value: (ScaleModel, Prediction) -> String) {
            lines.append("| \(name) | " + predictions.map { value($0.model, $0) }.joined(separator: " | ") + " |")
        }
        row("rows moved (share)") { m, _ in "\(grouped(Int(m.rowsMoved))) (\(String(format: "%.5f", m.plan.movedFraction)))" }
        row("bytes moved") { m, _ in Self.bytes(m.bytesMoved) }
        row("source shards / ranges moved") { m, _ in "\(grouped(m.plan.sources)) / \(grouped(m.plan.moves))" }
        row("change streams opened (PostgreSQL: replication slots)") { m, _ in grouped(m.changeStreams) }
        row("copy time, target bound") { m, _ in Self.duration(m.copySecondsTargetBound) }
        row("copy time, source bound (\(predictions.first.map { "\($0.model.sourcesReadingAtOnce)" } ?? "?") sources at once)") { m, _ in
            Self.duration(m.copySecondsSourceBound)
        }
        row("journal saves × size (after one of the plan)") { m, _ in
            "\(grouped(Int(m.journalSaves))) × \(Self.bytes(Double(m.plan.journalBytes))) (plan \(Self.bytes(Double(m.plan.planBytes))))"
        }
        row("journal written / time saving it") { m, _ in "\(Self.bytes(m.journalBytesWritten)) / \(Self.duration(m.journalSeconds))" }
        row("migrator: chunk buffers in flight") { m, _ in Self.bytes(m.chunkBufferBytes) }
        row("migrator: maps before + after") { m, _ in Self.bytes(m.mapMemoryBytes) }
        row("migrator memory: the measured move's + the maps") { m, p in Self.bytes(Double(p.moveAddedBytes) + m.mapMemoryBytes) }
        row("map after: ranges") { m, _ in grouped(m.plan.rangesAfter) }
        row("publish (inside the write hold)") { m, _ in String(format: "%.1f ms", m.rates.publishMillis) }
        row("each router's pickup (read, apply the moves, install)") { m, _ in String(format: "%.1f ms", m.rates.pickupMillis) }
        if let ring = maps.last {
            row("each request's map lookup") { _, _ in String(format: "%.0f ns", ring.lookupNanos) }
        }
        return lines.joined(separator: "\n")
    }

    static func bytes(_ value: Double) -> String {
        switch value {
        case 1e12...: String(format: "%.2f TB", value / 1e12)
        case 1e9...: String(format: "%.1f GB", value / 1e9)
        case 1e6...: String(format: "%.1f MB", value / 1e6)
        case 1e3...: String(format: "%.1f kB", value / 1e3)
        default: String(format: "%.0f B", value)
        }
    }

    static func duration(_ seconds: Double) -> String {
        switch seconds {
        case 86_400...: String(format: "%.1f d", seconds / 86_400)
        case 3_600...: String(format: "%.1f h", seconds / 3_600)
        case 60...: String(format: "%.1f min", seconds / 60)
        default: String(format: "%.1f s", seconds)
        }
    }
}
