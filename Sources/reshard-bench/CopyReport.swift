import Foundation

/// One backend's copy figures.
struct CopyReport: BackendReport {
    /// A bulk copy the live one is compared with.
    struct Baseline: Codable, Sendable {
        let method: String
        let rows: Int
        let seconds: Double
        var rowsPerSecond: Double { Double(rows) / max(seconds, 0.000_001) }
    }

    /// One live move.
    struct Move: Codable, Sendable {
        struct Phase: Codable, Sendable {
            let phase: String
            let seconds: Double
        }

        let label: String
        let throttled: Bool
        let rowsCopied: Int
        /// The copying phase alone.
        let copySeconds: Double
        let rowsPerSecond: Double
        /// From creating the migration to done (catch-up, verification, cutover, cleanup included).
        let totalSeconds: Double
        let phases: [Phase]
        let peakMemoryBytes: Int
        let memoryAtStartBytes: Int
    }

    let backend: String
    let rows: Int
    /// Payload bytes of the rows (keys, body, version and hash).
    let bytes: Int
    let baselines: [Baseline]
    let moves: [Move]
    /// The tenfold smaller move, for peak memory.
    let smallMove: Move

    var megabytesPerRow: Double { Double(bytes) / Double(max(1, rows)) / 1_000_000 }

    func ratio(_ move: Move, to baseline: Baseline) -> Double { move.rowsPerSecond / max(baseline.rowsPerSecond, 0.000_001) }

    var checks: [TargetCheck] {
        var checks: [TargetCheck] = []
        guard let unthrottled = moves.first(where: { !$0.throttled }) else { return checks }
        for baseline in baselines {
            let ratio = ratio(unthrottled, to: baseline)
            let detail = String(format: "%.0f vs %.0f rows/s", unthrottled.rowsPerSecond, baseline.rowsPerSecond)
            if baseline.method.hasPrefix("pgcopydb") {
                checks.append(.atLeast("copy rate vs pgcopydb", backend, ratio, 1, detail: detail))
            } else {
                checks.append(.atLeast("copy rate vs raw bulk copy", backend, ratio, 0.8, detail: detail))
            }
        }
        let memory = Double(unthrottled.peakMemoryBytes) / Double(max(1, smallMove.peakMemoryBytes))
        checks.append(
            .atMost(
                "peak memory, \(grouped(rows))-row move vs \(grouped(smallMove.rowsCopied))-row move", backend, memory, 1.2,
                detail: String(
                    format: "%.0f vs %.0f MiB", PeakMemory.megabytes(unthrottled.peakMemoryBytes),
                    PeakMemory.megabytes(smallMove.peakMemoryBytes))))
        return checks
    }

    var markdown: String {
        var lines = [
            "**\(backend)**, \(grouped(rows)) rows, \(String(format: "%.0f", Double(bytes) / Double(max(1, rows)))) bytes each",
            "",
            "| copy | rows/s | MB/s | seconds | vs raw | peak MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        let raw = baselines.first
        for baseline in baselines {
            lines.append(
                String(
                    format: "| %@ | %.0f | %.1f | %.2f | %.2f | |", baseline.method as NSString, baseline.rowsPerSecond,
                    baseline.rowsPerSecond * megabytesPerRow, baseline.seconds, raw.map { baseline.rowsPerSecond / $0.rowsPerSecond } ?? 1))
        }
        for move in moves + [smallMove] {
            lines.append(
                String(
                    format: "| reshard %@ (%@ rows) | %.0f | %.1f | %.2f | %@ | %.0f |", move.label as NSString,
                    grouped(move.rowsCopied) as NSString, move.rowsPerSecond, move.rowsPerSecond * megabytesPerRow, move.copySeconds,
                    (raw.map { String(format: "%.2f", ratio(move, to: $0)) } ?? "") as NSString, PeakMemory.megabytes(move.peakMemoryBytes))
            )
        }
        return lines.joined(separator: "\n")
    }
}
