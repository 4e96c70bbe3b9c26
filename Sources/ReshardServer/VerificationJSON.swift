import Foundation
import ReshardCore
import ReshardEngine

/// The JSON of a migration's proof: gates, canary, shadow reads and verification, in status and
/// in the full report at `/v1/migrations/{id}/verification`.
enum VerificationJSON {
    /// Status members: what it waits for, the canary, the shadow reads, the verification summary.
    static func statusMembers(_ status: MigrationStatus, now: UInt64) -> [(String, String)] {
        let m = status.machine
        let awaiting = m.awaitingApproval.map { gate in
            JSONText.object([
                ("gate", JSONText.quoted(gate.gateName)),
                ("since_ms", m.awaitingSince.map(String.init) ?? "null"),
                ("waiting_ms", status.waitingMillis(now: now).map(String.init) ?? "null"),
            ])
        }
        return [
            ("awaiting_approval", awaiting ?? "null"),
            ("gates", gateList(m.settings.gates)),
            ("approved", gateList(m.approved)),
            ("bake_ms", String(m.settings.bakeMillis)),
            ("bake_until_ms", m.bakeUntil.map(String.init) ?? "null"),
            (
                "canary",
                JSONText.object([
                    ("steps", JSONText.array(m.settings.canarySteps.map { number($0) })),
                    ("step_ms", String(m.settings.canaryStepMillis)),
                    ("step", m.phase == .canary ? m.canary.map { String($0.step) } ?? "null" : "null"),
                    ("percent", m.canaryReadPercent.map { number($0) } ?? "null"),
                    ("passed", m.canaryPassed ? "true" : "false"),
                ])
            ),
            ("shadow_reads", status.shadow.map(shadow) ?? "null"),
            ("verification", m.verification.map { summary($0, verifications: m.verifications) } ?? "null"),
        ]
    }

    /// The full report: per move, rows compared, sub-ranges, differences by class, repairs, time.
    static func report(_ status: MigrationStatus) -> String {
        let m = status.machine
        guard let report = m.verification else {
            return JSONText.object([
                ("id", JSONText.quoted(m.id)), ("phase", JSONText.quoted(m.phase.rawValue)), ("verifications", "0"), ("moves", "[]"),
            ])
        }
        let moves = report.moves.map { result -> String in
            let move = m.plan.moves.indices.contains(result.move) ? m.plan.moves[result.move] : nil
            return JSONText.object([
                ("move", String(result.move)),
                ("start", move.map { JSONText.quoted($0.range.startHex) } ?? "null"),
                ("end", move.map { JSONText.quoted($0.range.endHex) } ?? "null"),
                ("source", move.map { JSONText.quoted($0.source.rawValue) } ?? "null"),
                ("target", move.map { JSONText.quoted($0.target.rawValue) } ?? "null"),
                ("rows_compared", String(result.rowsCompared)),
                ("subranges", String(result.subranges)),
                ("mismatched_subranges", String(result.mismatchedSubranges)),
                ("differences", differences(result.differences)),
                ("repaired", String(result.repaired)),
                ("passes", String(result.passes)),
                ("clean", result.clean ? "true" : "false"),
                ("ms", JSONText.millis(result.micros)),
            ])
        }
        return JSONText.object([
            ("id", JSONText.quoted(m.id)),
            ("phase", JSONText.quoted(m.phase.rawValue)),
            ("verifications", String(m.verifications)),
            ("summary", summary(report, verifications: m.verifications)),
            ("positions", JSONText.object(report.positions.sorted { $0.key < $1.key }.map { ($0.key.rawValue, String($0.value)) })),
            ("unresolved", JSONText.array(report.unresolved.prefix(100).map(JSONText.quoted))),
            ("moves", JSONText.array(moves)),
        ])
    }

    static func summary(_ report: VerificationReport, verifications: Int) -> String {
        JSONText.object([
            ("verifications", String(verifications)),
            ("passed", report.passed ? "true" : "false"),
            ("at_ms", String(report.at)),
            ("ms", JSONText.millis(report.micros)),
            ("moves", String(report.moves.count)),
            ("rows_compared", String(report.rowsCompared)),
            ("subranges", String(report.moves.reduce(0) { $0 + $1.subranges })),
            ("mismatched_subranges", String(report.moves.reduce(0) { $0 + $1.mismatchedSubranges })),
            ("differences", differences(report.differences)),
            ("repaired", String(report.repaired)),
            ("unresolved", String(report.unresolved.count)),
            ("aggregates", JSONText.array(report.aggregates.map(aggregate))),
        ])
    }

    static func aggregate(_ result: AggregateCheckResult) -> String {
        func side(_ summary: AggregateSummary) -> String {
            JSONText.object([
                ("rows", String(summary.rows)), ("numeric", String(summary.numeric)), ("sum", JSONText.quoted(summary.sum)),
            ])
        }
        return JSONText.object([
            ("check", JSONText.quoted(result.check.description)), ("old", side(result.old)), ("new", side(result.new)),
            ("matches", result.matches ? "true" : "false"),
        ])
    }

    static func shadow(_ stats: ShadowReads.Stats) -> String {
        let recent = stats.recent.reversed().map { comparison in
            JSONText.object([
                ("table", JSONText.quoted(comparison.table.rawValue)), ("pk", JSONText.quoted(comparison.pk)),
                ("source_version", comparison.sourceVersion.map(String.init) ?? "null"),
                ("target_version", comparison.targetVersion.map(String.init) ?? "null"),
                ("result", JSONText.quoted(comparison.outcome.name)), ("at_ms", String(comparison.at)),
            ])
        }
        return JSONText.object([
            ("active", stats.active ? "true" : "false"),
            ("halted", stats.halted ? "true" : "false"),
            ("percent", number(stats.percent)),
            ("reads", String(stats.reads)),
            ("matches", String(stats.matches)),
            ("lag", String(stats.lag)),
            ("mismatches", String(stats.mismatches)),
            ("errors", String(stats.errors)),
            ("latency_delta_p50_us", stats.latencyDeltaP50Micros.map(String.init) ?? "null"),
            ("latency_delta_p99_us", stats.latencyDeltaP99Micros.map(String.init) ?? "null"),
            ("recent", JSONText.array(recent)),
        ])
    }

    static func differences(_ counts: [DiffClass: Int]) -> String {
        JSONText.object(DiffClass.allCases.map { ($0.rawValue, String(counts[$0] ?? 0)) })
    }

    static func gateList(_ gates: Set<MigrationPhase>) -> String {
        JSONText.array(gates.map(\.gateName).sorted().map(JSONText.quoted))
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

}
