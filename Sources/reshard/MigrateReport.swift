import ArgumentParser
import Foundation
import ReshardAPI
import ReshardClient

struct MigrationReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "A migration's report: phases, copy, write pauses, verification, canary, and the foreground latency around it.",
        discussion: """
            Prints the report as text (--json: GET /v1/migrations/{id}/report as it is) and, with --html or --svg, writes it as a \
            self-contained page (the latency chart with the phases shaded, the phase timeline and the figures) or the chart alone. \
            The latency is the answering router's, per second, from a minute before the migration to a minute after it, as far as \
            the router still holds it (its last hour since it started).

            Example:
              reshard migrate report m1abc --html report.html
              reshard migrate report --svg latency.svg
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The migration id (default: the latest).") var id: String?
    @Option(help: "Write the report as an HTML page to this file.") var html: String?
    @Option(help: "Write the latency chart as SVG to this file.") var svg: String?
    @Flag(help: "Print GET /v1/migrations/{id}/report as JSON instead of text.") var json = false

    func run() async throws {
        let api = try await connection.connect()
        defer { Task { await api.close() } }
        guard let target = try await migrationID(id, api) else { return }
        let report: API.MigrationReport = try await api.get("/v1/migrations/\(target)/report")
        let view = MigrationReportView(report)
        if json { try WireJSON.print(report) } else { print(view.text) }
        if let html {
            try view.html.write(toFile: html, atomically: true, encoding: .utf8)
            FileHandle.standardError.write(Data("wrote \(html)\n".utf8))
        }
        if let svg {
            try view.chart.write(toFile: svg, atomically: true, encoding: .utf8)
            FileHandle.standardError.write(Data("wrote \(svg)\n".utf8))
        }
    }
}

/// A migration's report as text lines, an SVG chart and an HTML page, all from the same figures.
struct MigrationReportView {
    let report: API.MigrationReport
    let lines: [(label: String, value: String)]

    /// The foreground before, during and after the migration, from the router's per-second
    /// figures: requests, the median second's p99 (the typical tail) and the worst second's.
    struct Stage {
        var name: String
        var requests: UInt64
        var medianP99: Double
        var worstP99: Double
    }

    init(_ report: API.MigrationReport) {
        self.report = report
        let m = report.migration
        var lines: [(String, String)] = []
        let start = m.phases.first?.atMs
        let end = m.endedMs ?? m.phases.last?.atMs
        lines.append(("migration", "\(m.id): \(m.kind) by \(m.strategy), \(m.phase)" + (m.error.map { " (error: \($0))" } ?? "")))
        if let start, let end, end >= start {
            lines.append(("took", String(format: "%.1f s", Double(end - start) / 1_000) + " over \(m.moves) ranges"))
        }
        lines.append(
            (
                "copied",
                "\(m.rowsCopied) of \(m.rowsEstimated.map(String.init) ?? "?") rows, \(Self.bytes(report.bytesCopied)) of "
                    + "\(report.bytesEstimated.map(Self.bytes) ?? "?"); \(m.copyTasksDone) of \(m.copyTasks) copy tasks"
            ))
        if let rate = Self.copyRate(m) { lines.append(("copy rate", String(format: "%.0f rows/s", rate))) }
        lines.append(
            (
                "phases",
                Self.durations(m, now: end).map { String(format: "%@ %.2f s", $0.phase as NSString, $0.seconds) }.joined(separator: " · ")
            ))
        for (index, pause) in m.writePauses.enumerated() {
            lines.append(
                (
                    "write pause #\(index + 1)",
                    String(
                        format: "%d held writes: p50 %.2f ms · p99 %.2f ms · max %.2f ms", pause.writesHeld, pause.p50Ms, pause.p99Ms,
                        pause.maxMs)
                ))
        }
        if m.writePauses.isEmpty { lines.append(("write pause", "no cutover yet")) }
        if !m.cutoverSteps.isEmpty {
            lines.append(
                ("cutover steps", m.cutoverSteps.map { String(format: "%@ %.1f ms", $0.step as NSString, $0.ms) }.joined(separator: " · ")))
        }
        lines.append(("cutover attempts", "\(m.cutoverAttempts)"))
        if let v = m.verification {
            lines.append(
                (
                    "verification",
                    "\(v.verifications) run(s), \(v.passed ? "passed" : "NOT passed"): \(v.rowsCompared) rows compared in \(v.subranges) sub-ranges, "
                        + "\(v.mismatchedSubranges) differed, \(v.repaired) rows repaired, \(v.unresolved) unresolved"
                ))
        } else {
            lines.append(("verification", "none yet"))
        }
        let canary = m.canary.steps.isEmpty ? "none" : m.canary.steps.map { String(format: "%.0f %%", $0) }.joined(separator: " → ")
        let shadow = m.shadowReads.map {
            ": \($0.reads) shadow reads, \($0.matches) matched, \($0.mismatches) differed, \($0.errors) errors"
                + ($0.halted ? ", HALTED" : "")
        }
        lines.append(("canary", canary + (shadow ?? "") + (m.canary.passed ? " (passed)" : "")))
        lines.append(("cleanup", "\(m.rowsDeleted) moved rows deleted from the old owners, \(m.tombstonesPurged) tombstones purged"))
        if let reason = m.throttle.reason { lines.append(("throttle", reason)) }
        let stages = Self.stages(report.latency, start: start, end: m.endedMs)
        if stages.isEmpty {
            lines.append(("foreground", "no requests through \(report.router) around the migration (or the router no longer holds them)"))
        } else {
            lines.append(
                (
                    "foreground p99",
                    stages.map { String(format: "%@ %.2f ms (worst second %.2f ms)", $0.name as NSString, $0.medianP99, $0.worstP99) }
                        .joined(separator: " · ")
                ))
            lines.append(("requests", stages.map { "\($0.name) \($0.requests)" }.joined(separator: " · ") + " through \(report.router)"))
        }
        self.lines = lines
    }

    var text: String {
        (["Report"] + lines.map { "  " + $0.label.padding(toLength: 20, withPad: " ", startingAt: 0) + $0.value }).joined(separator: "\n")
    }

    /// The latency chart: seconds from the first second shown, phases shaded.
    var chart: String {
        let m = report.migration
        let origin = min(report.latency.first?.atMs ?? .max, m.phases.first?.atMs ?? .max)
        guard origin != .max else { return LatencySVG.document(title: "Migration \(m.id): no figures", panels: []) }
        let seconds = { (ms: UInt64) in Double(ms - min(ms, origin)) / 1_000 }
        let points = report.latency.map { LatencySVG.Point(second: seconds($0.atMs) + 0.5, p50Millis: $0.p50Ms, p99Millis: $0.p99Ms) }
        let ends = m.phases.dropFirst().map(\.atMs) + [m.endedMs ?? (report.latency.last.map { $0.atMs + 1_000 } ?? origin)]
        let bands = zip(m.phases, ends).filter { !["done", "rolled_back", "failed"].contains($0.0.phase) }.map {
            LatencySVG.Band(phase: $0.0.phase, fromSecond: seconds($0.0.atMs), toSecond: seconds(max($0.0.atMs, $0.1)))
        }
        return LatencySVG.document(
            title: "Reshard: foreground latency through \(report.router) around migration \(m.id) (\(m.kind))",
            panels: [(title: "p50 and p99 per second, phases shaded", points: points, bands: bands)])
    }

    var html: String {
        let m = report.migration
        let escape = LatencySVG.escaped
        let rows = lines.map { "<tr><th>\(escape($0.label))</th><td>\(escape($0.value))</td></tr>" }.joined(separator: "\n")
        let phases = Self.durations(m, now: m.endedMs ?? m.phases.last?.atMs).map {
            "<tr><td>\(escape($0.phase))</td><td>\(String(format: "%.3f s", $0.seconds))</td></tr>"
        }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Reshard migration \(escape(m.id))</title>
            <style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
            th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #eee;vertical-align:top}th{color:#555;font-weight:600}</style>
            </head><body>
            <h1>Migration \(escape(m.id))</h1>
            <p>\(escape(m.kind)) by \(escape(m.strategy)), \(escape(m.phase)); generation \(m.fromGeneration) → \(m.toGeneration).</p>
            \(chart)
            <h2>Figures</h2>
            <table>
            \(rows)
            </table>
            <h2>Phase timeline</h2>
            <table><tr><th>phase</th><th>took</th></tr>
            \(phases)
            </table>
            </body></html>
            """
    }

    /// Each phase and how long it lasted, up to `now` for the last.
    static func durations(_ m: API.MigrationDetail, now: UInt64?) -> [(phase: String, seconds: Double)] {
        m.phases.enumerated().compactMap { index, mark in
            guard !["done", "rolled_back", "failed"].contains(mark.phase) else { return nil }
            let next = index + 1 < m.phases.count ? m.phases[index + 1].atMs : (now ?? mark.atMs)
            return (mark.phase, Double(next - min(next, mark.atMs)) / 1_000)
        }
    }

    /// Rows per second over the copy phase, when it is over.
    static func copyRate(_ m: API.MigrationDetail) -> Double? {
        guard let copy = m.phases.firstIndex(where: { $0.phase == "copying" }), copy + 1 < m.phases.count else { return nil }
        let millis = m.phases[copy + 1].atMs - min(m.phases[copy + 1].atMs, m.phases[copy].atMs)
        return millis == 0 ? nil : Double(m.rowsCopied) / (Double(millis) / 1_000)
    }

    static func stages(_ seconds: [API.Dashboard.Second], start: UInt64?, end: UInt64?) -> [Stage] {
        guard let start else { return [] }
        let during = { (second: API.Dashboard.Second) in second.atMs + 1_000 > start && (end.map { second.atMs < $0 } ?? true) }
        let groups: [(String, [API.Dashboard.Second])] = [
            ("before", seconds.filter { $0.atMs + 1_000 <= start }),
            ("during", seconds.filter(during)),
            ("after", end.map { last in seconds.filter { $0.atMs >= last } } ?? []),
        ]
        return groups.compactMap { name, group in
            guard !group.isEmpty else { return nil }
            let p99s = group.map(\.p99Ms).sorted()
            return Stage(
                name: name, requests: group.reduce(0) { $0 + $1.requests }, medianP99: p99s[p99s.count / 2], worstP99: p99s.last ?? 0)
        }
    }

    static func bytes(_ value: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit] as NSString)
    }
}
