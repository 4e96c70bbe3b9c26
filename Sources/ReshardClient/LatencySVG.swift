import Foundation

/// Latency over time as SVG: p50 and p99 lines over phase bands. The CLI's migration report
/// and the benchmarks draw the same chart with it.
public enum LatencySVG {
    /// One point of the chart: seconds from the chart's start and the latencies then.
    public struct Point: Sendable {
        public var second: Double
        public var p50Millis: Double
        public var p99Millis: Double

        public init(second: Double, p50Millis: Double, p99Millis: Double) {
            self.second = second
            self.p50Millis = p50Millis
            self.p99Millis = p99Millis
        }
    }

    /// A phase, seconds from the chart's start.
    public struct Band: Sendable {
        public var phase: String
        public var fromSecond: Double
        public var toSecond: Double

        public init(phase: String, fromSecond: Double, toSecond: Double) {
            self.phase = phase
            self.fromSecond = fromSecond
            self.toSecond = toSecond
        }
    }

    public static let width = 960.0
    public static let panelHeight = 240.0
    static let margin = (left: 56.0, right: 16.0, top: 28.0, bottom: 34.0)

    public static let phaseColors: [String: String] = [
        "preparing": "#eeeeee", "recording": "#e4e4f4", "dual_writing": "#e4e4f4", "copying": "#fde2b8", "catching_up": "#fff3b0",
        "verifying": "#d9f0d3", "canary": "#cfe8e3", "serving_reads": "#d4ecf7", "cutting_over": "#f4a6a6", "baking": "#d6e6f5",
        "cleaning_up": "#e6dcf2", "paused": "#dddddd", "rolling_back": "#f7c6c6",
    ]

    /// A whole SVG document of `panels` stacked under `title`.
    public static func document(title: String, panels: [(title: String, points: [Point], bands: [Band])]) -> String {
        let height = panelHeight * Double(panels.count) + 24
        var parts = [
            "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(width))' height='\(Int(height))' font-family='sans-serif' font-size='11'>",
            "<rect width='100%' height='100%' fill='white'/>",
            "<text x='\(margin.left)' y='16' font-size='13'>\(escaped(title))</text>",
        ]
        for (index, panel) in panels.enumerated() {
            parts.append(self.panel(title: panel.title, points: panel.points, bands: panel.bands, top: 24 + panelHeight * Double(index)))
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// One panel whose top edge is at `top`.
    public static func panel(title: String, points: [Point], bands: [Band], top: Double) -> String {
        let plot = (
            x: margin.left, y: top + margin.top, width: width - margin.left - margin.right,
            height: panelHeight - margin.top - margin.bottom
        )
        let lastSecond = max(1, max(points.last?.second ?? 1, bands.map(\.toSecond).max() ?? 1) + 0.25)
        // The scale stops at the 98th percentile of the points' p99, so one outlier cannot
        // flatten the rest; taller points are clipped at the top.
        let ceiling = max(1, percentile(points.map(\.p99Millis).sorted(), 98) * 1.15)
        func x(_ second: Double) -> Double { plot.x + max(0, min(1, second / lastSecond)) * plot.width }
        func y(_ millis: Double) -> Double { plot.y + plot.height - min(1, millis / ceiling) * plot.height }
        var parts: [String] = []
        parts.append("<text x='\(plot.x)' y='\(plot.y - 8)' font-weight='bold'>\(escaped(title))</text>")
        for band in bands {
            let (from, to) = (x(band.fromSecond), x(band.toSecond))
            let color = phaseColors[band.phase] ?? "#f0f0f0"
            parts.append(
                "<rect x='\(fmt(from))' y='\(plot.y)' width='\(fmt(max(1, to - from)))' height='\(plot.height)' fill='\(color)'><title>\(escaped(band.phase))</title></rect>"
            )
        }
        // Labels after every band, so a narrow band's label is not covered by the next band.
        for (index, band) in bands.enumerated() {
            let (from, to) = (x(band.fromSecond), x(band.toSecond))
            if to - from > 40 || band.phase == "cutting_over" {
                // Narrow bands' labels go on a second line, clear of their neighbours' labels.
                let line = to - from > 40 ? 12.0 : 12.0 + 12.0 * Double(1 + index % 2)
                parts.append("<text x='\(fmt(from + 2))' y='\(fmt(plot.y + line))' fill='#555'>\(escaped(band.phase))</text>")
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
        for (series, color, value) in [("p50", "#1f77b4", \Point.p50Millis), ("p99", "#d62728", \.p99Millis)] {
            let line = points.map { "\(fmt(x($0.second))),\(fmt(y($0[keyPath: value])))" }.joined(separator: " ")
            parts.append("<polyline fill='none' stroke='\(color)' stroke-width='1.5' points='\(line)'/>")
            let legendX = plot.x + plot.width - (series == "p50" ? 110 : 60)
            parts.append("<text x='\(legendX)' y='\(plot.y - 8)' fill='\(color)'>— \(series)</text>")
        }
        return parts.joined(separator: "\n")
    }

    /// Text safe inside an SVG or HTML element or a quoted attribute.
    public static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&#39;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(sorted.count - 1, max(0, rank))]
    }

    static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
}
