import Foundation

/// Latency over time as an SVG: one panel per run (throttle off, on), p50 and p99 of each
/// 250 ms of requests, the migration's phases as shaded bands.
enum LatencyChart {
    static let width = 960.0
    static let panelHeight = 240.0
    static let margin = (left: 56.0, right: 16.0, top: 28.0, bottom: 34.0)

    static let phaseColors: [String: String] = [
        "preparing": "#eeeeee", "copying": "#fde2b8", "catching_up": "#fff3b0", "verifying": "#d9f0d3", "cutting_over": "#f4a6a6",
        "baking": "#d6e6f5", "cleaning_up": "#e6dcf2",
    ]

    static func svg(_ report: LatencyReport) -> String {
        let height = panelHeight * Double(report.runs.count) + 24
        var parts = [
            "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(width))' height='\(Int(height))' font-family='sans-serif' font-size='11'>",
            "<rect width='100%' height='100%' fill='white'/>",
            "<text x='\(margin.left)' y='16' font-size='13'>Reshard: client latency while adding s5 (\(report.backend), \(report.rows) rows, \(report.rate) req/s)</text>",
        ]
        for (index, run) in report.runs.enumerated() {
            parts.append(panel(run, top: 24 + panelHeight * Double(index)))
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    private static func panel(_ run: LatencyReport.Run, top: Double) -> String {
        let plot = (
            x: margin.left, y: top + margin.top, width: width - margin.left - margin.right,
            height: panelHeight - margin.top - margin.bottom
        )
        let lastSecond = max(1, (run.timeline.last?.second ?? 1) + 0.25)
        // The scale stops at the 98th percentile of the points' p99, so one outlier cannot
        // flatten the rest; taller points are clipped at the top.
        let ceiling = max(1, percentile(run.timeline.map(\.p99Millis).sorted(), 98) * 1.15)
        func x(_ second: Double) -> Double { plot.x + max(0, min(1, second / lastSecond)) * plot.width }
        func y(_ millis: Double) -> Double { plot.y + plot.height - min(1, millis / ceiling) * plot.height }
        var parts: [String] = []
        let title = "throttle \(run.throttled ? "on (latency factor 1.2)" : "off")"
        parts.append("<text x='\(plot.x)' y='\(plot.y - 8)' font-weight='bold'>\(title)</text>")
        for band in run.bands {
            let (from, to) = (x(band.fromSecond), x(band.toSecond))
            let color = phaseColors[band.phase] ?? "#f0f0f0"
            parts.append(
                "<rect x='\(fmt(from))' y='\(plot.y)' width='\(fmt(max(1, to - from)))' height='\(plot.height)' fill='\(color)'><title>\(band.phase)</title></rect>"
            )
        }
        // Labels after every band, so a narrow band's label is not covered by the next band.
        for (index, band) in run.bands.enumerated() {
            let (from, to) = (x(band.fromSecond), x(band.toSecond))
            if to - from > 40 || band.phase == "cutting_over" {
                // Narrow bands' labels go on a second line, clear of their neighbours' labels.
                let line = to - from > 40 ? 12.0 : 12.0 + 12.0 * Double(1 + index % 2)
                parts.append("<text x='\(fmt(from + 2))' y='\(fmt(plot.y + line))' fill='#555'>\(band.phase)</text>")
            }
        }
        parts.append(
            "<rect x='\(plot.x)' y='\(plot.y)' width='\(plot.width)' height='\(plot.height)' fill='none' stroke='#999'/>")
        for tick in 0...4 {
            let value = ceiling * Double(tick) / 4
            parts.append("<text x='\(plot.x - 6)' y='\(fmt(y(value) + 4))' text-anchor='end'>\(String(format: "%.1f", value))</text>")
            parts.append(
                "<line x1='\(plot.x)' x2='\(plot.x + plot.width)' y1='\(fmt(y(value)))' y2='\(fmt(y(value)))' stroke='#ddd'/>")
        }
        let step = max(1, Int(lastSecond / 10))
        for second in stride(from: 0, through: Int(lastSecond), by: step) {
            parts.append(
                "<text x='\(fmt(x(Double(second))))' y='\(plot.y + plot.height + 14)' text-anchor='middle'>\(second)s</text>")
        }
        parts.append("<text x='14' y='\(plot.y + plot.height / 2)' transform='rotate(-90 14 \(plot.y + plot.height / 2))'>ms</text>")
        for (series, color, value) in [("p50", "#1f77b4", \LatencyReport.Point.p50Millis), ("p99", "#d62728", \.p99Millis)] {
            let points = run.timeline.map { "\(fmt(x($0.second))),\(fmt(y($0[keyPath: value])))" }.joined(separator: " ")
            parts.append("<polyline fill='none' stroke='\(color)' stroke-width='1.5' points='\(points)'/>")
            let legendX = plot.x + plot.width - (series == "p50" ? 110 : 60)
            parts.append("<text x='\(legendX)' y='\(plot.y - 8)' fill='\(color)'>— \(series)</text>")
        }
        return parts.joined(separator: "\n")
    }

    private static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
}
