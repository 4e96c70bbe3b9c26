import Foundation
import ReshardAPI

/// A migration's proof as the CLI prints it: the verification report, and the status lines
/// about gates, the canary, shadow reads and the last verification.
enum VerificationText {

    static func report(_ body: API.VerificationReport, all: Bool) -> String {
        guard let summary = body.summary else { return "migration \(body.id) (\(body.phase)): not verified yet" }
        var lines = ["migration \(body.id) (\(body.phase)): verification \(body.verifications)"]
        lines += self.summary(summary).map { "  " + $0 }
        for problem in body.unresolved ?? [] { lines.append("  unresolved " + problem) }
        // The interesting moves: any with differences, then the slowest, unless all are asked for.
        var moves = body.moves
        if !all {
            let differing = moves.filter { $0.differences.total > 0 || !$0.clean }
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
                    String(move.rowsCompared), String(move.subranges), String(move.mismatchedSubranges), differences(move.differences),
                    String(move.repaired), String(move.passes), String(format: "%.1f", move.ms), move.clean ? "yes" : "NO",
                ]
            },
            rightAligned: [0, 3, 4, 5, 7, 8, 9])
        if !all && moves.count < body.moves.count {
            lines.append("(\(body.moves.count - moves.count) more clean moves; --all lists every move)")
        }
        return lines.joined(separator: "\n")
    }

    static func summary(_ summary: API.VerificationSummary) -> [String] {
        var lines = [
            "\(summary.passed ? "passed" : "FAILED"): \(summary.rowsCompared) rows over \(summary.moves) moves in "
                + String(format: "%.0f ms; ", summary.ms)
                + "\(summary.subranges) sub-ranges compared, \(summary.mismatchedSubranges) differed",
            "differences \(differences(summary.differences)); \(summary.repaired) repaired, \(summary.unresolved) unresolved",
        ]
        for aggregate in summary.aggregates {
            lines.append(
                "check \(aggregate.check): old \(aggregate.old.rows) rows, sum \(aggregate.old.sum); new \(aggregate.new.rows) rows, "
                    + "sum \(aggregate.new.sum) \(aggregate.matches ? "(equal)" : "(DIFFERENT)")")
        }
        return lines
    }

    static func differences(_ counts: API.DiffCounts) -> String {
        let found = counts.byClass.filter { $0.count > 0 }.map { "\($0.name) \($0.count)" }
        return found.isEmpty ? "none" : found.joined(separator: ", ")
    }

    /// Status lines about the proof: what it waits for, the canary, shadow reads, verification.
    static func status(_ status: API.MigrationDetail) -> [String] {
        var lines: [String] = []
        if let awaiting = status.awaitingApproval {
            let waited = awaiting.waitingMs.map { String(format: " for %.0f s", Double($0) / 1_000) } ?? ""
            lines.append("  waiting  for approval \(awaiting.gate)\(waited): reshard migrate approve \(status.id)")
        }
        if let percent = status.canary.percent, let step = status.canary.step {
            lines.append(
                String(format: "  canary   step %d of %d: %.0f %% of reads shadow-read", step + 1, status.canary.steps.count, percent))
        }
        if let shadow = status.shadowReads {
            var line = "  shadow   \(shadow.reads) reads: \(shadow.matches) match, \(shadow.lag) lag, \(shadow.mismatches) mismatch"
            if shadow.errors > 0 { line += ", \(shadow.errors) errors" }
            if let p50 = shadow.latencyDeltaP50Us, let p99 = shadow.latencyDeltaP99Us {
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
