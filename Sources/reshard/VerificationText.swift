import Foundation
import ReshardCore

/// `GET /v1/migrations/{id}/verification`.
struct VerificationBody: Decodable {
    struct Move: Decodable {
        let move: Int
        let start: String?
        let end: String?
        let source: String?
        let target: String?
        let rows_compared: Int
        let subranges: Int
        let mismatched_subranges: Int
        let differences: [String: Int]
        let repaired: Int
        let passes: Int
        let clean: Bool
        let ms: Double
    }
    let id: String
    let phase: String
    let verifications: Int
    let summary: VerificationSummary?
    let unresolved: [String]?
    let moves: [Move]
}

/// The verification summary in status and in the report.
struct VerificationSummary: Decodable {
    struct Aggregate: Decodable {
        struct Side: Decodable {
            let rows: Int
            let numeric: Int
            let sum: String
        }
        let check: String
        let old: Side
        let new: Side
        let matches: Bool
    }
    let verifications: Int
    let passed: Bool
    let ms: Double
    let moves: Int
    let rows_compared: Int
    let subranges: Int
    let mismatched_subranges: Int
    let differences: [String: Int]
    let repaired: Int
    let unresolved: Int
    let aggregates: [Aggregate]
}

/// Gates, canary and shadow reads in status.
enum ProofStatus {
    struct Awaiting: Decodable {
        let gate: String
        let waiting_ms: UInt64?
    }
    struct Canary: Decodable {
        let steps: [Double]
        let step: Int?
        let percent: Double?
    }
    struct Shadow: Decodable {
        let active: Bool
        let halted: Bool
        let reads: Int
        let matches: Int
        let lag: Int
        let mismatches: Int
        let errors: Int
        let latency_delta_p50_us: Int?
        let latency_delta_p99_us: Int?
    }
}

enum VerificationText {

    static func report(_ body: VerificationBody, all: Bool) -> String {
        guard let summary = body.summary else { return "migration \(body.id) (\(body.phase)): not verified yet" }
        var lines = ["migration \(body.id) (\(body.phase)): verification \(body.verifications)"]
        lines += self.summary(summary).map { "  " + $0 }
        for problem in body.unresolved ?? [] { lines.append("  unresolved " + problem) }
        // The interesting moves: any with differences, then the slowest, unless all are asked for.
        var moves = body.moves
        if !all {
            let differing = moves.filter { $0.differences.values.reduce(0, +) > 0 || !$0.clean }
            let slowest = moves.sorted { $0.ms > $1.ms }.prefix(5)
            var seen = Set<Int>()
            moves = (differing + slowest).filter { seen.insert($0.move).inserted }.sorted { $0.move < $1.move }
        }
        lines.append("")
        lines += TextTable.render(
            header: ["MOVE", "RANGE", "FROM → TO", "ROWS", "SUB-RANGES", "DIFFERING", "DIFFERENCES", "REPAIRED", "PASSES", "MS", "CLEAN"],
            rows: moves.map { move in
                [
                    String(move.move), "[\(move.start ?? "?"), \(move.end ?? "?"))", "\(move.source ?? "?") → \(move.target ?? "?")",
                    String(move.rows_compared), String(move.subranges), String(move.mismatched_subranges), differences(move.differences),
                    String(move.repaired), String(move.passes), String(format: "%.1f", move.ms), move.clean ? "yes" : "NO",
                ]
            },
            rightAligned: [0, 3, 4, 5, 7, 8, 9])
        if !all && moves.count < body.moves.count {
            lines.append("(\(body.moves.count - moves.count) more clean moves; --all lists every move)")
        }
        return lines.joined(separator: "\n")
    }

    static func summary(_ summary: VerificationSummary) -> [String] {
        var lines = [
            "\(summary.passed ? "passed" : "FAILED"): \(summary.rows_compared) rows over \(summary.moves) moves in "
                + String(format: "%.0f ms; ", summary.ms)
                + "\(summary.subranges) sub-ranges compared, \(summary.mismatched_subranges) differed",
            "differences \(differences(summary.differences)); \(summary.repaired) repaired, \(summary.unresolved) unresolved",
        ]
        for aggregate in summary.aggregates {
            lines.append(
                "check \(aggregate.check): old \(aggregate.old.rows) rows, sum \(aggregate.old.sum); new \(aggregate.new.rows) rows, "
                    + "sum \(aggregate.new.sum) \(aggregate.matches ? "(equal)" : "(DIFFERENT)")")
        }
        return lines
    }

    static func differences(_ counts: [String: Int]) -> String {
        let found = DiffClass.allCases.map(\.rawValue).compactMap { name in counts[name].flatMap { $0 > 0 ? "\(name) \($0)" : nil } }
        return found.isEmpty ? "none" : found.joined(separator: ", ")
    }

    /// Status lines about the proof: what it waits for, the canary, shadow reads, verification.
    static func status(_ status: MigrationStatusBody) -> [String] {
        var lines: [String] = []
        if let awaiting = status.awaiting_approval {
            let waited = awaiting.waiting_ms.map { String(format: " for %.0f s", Double($0) / 1_000) } ?? ""
            lines.append("  waiting  for approval \(awaiting.gate)\(waited): reshard migrate approve \(status.id)")
        }
        if let canary = status.canary, let percent = canary.percent, let step = canary.step {
            lines.append(String(format: "  canary   step %d of %d: %.0f %% of reads shadow-read", step + 1, canary.steps.count, percent))
        }
        if let shadow = status.shadow_reads {
            var line = "  shadow   \(shadow.reads) reads: \(shadow.matches) match, \(shadow.lag) lag, \(shadow.mismatches) mismatch"
            if shadow.errors > 0 { line += ", \(shadow.errors) errors" }
            if let p50 = shadow.latency_delta_p50_us, let p99 = shadow.latency_delta_p99_us {
                line += ", latency delta p50 \(p50) µs p99 \(p99) µs"
            }
            if shadow.halted { line += " (HALTED)" }
            lines.append(line)
        }
        if let verification = status.verification {
            lines += self.summary(verification).enumerated().map { ($0.offset == 0 ? "  verified " : "           ") + $0.element }
        }
        return lines
    }
}
