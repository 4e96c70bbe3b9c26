import Foundation

struct IgnoredBody: Decodable {}

struct CommandAnswer: Decodable {
    let id: String
    let phase: String
}

struct PlanBody: Decodable {
    struct MoveBody: Decodable {
        let start: String
        let end: String
        let source: String
        let target: String
        let rows: Int
    }
    let kind: String
    let from_generation: UInt64
    let to_generation: UInt64
    let moves: [MoveBody]
    let rows: Int
    let bytes: Int
    let moved_fraction: Double
    let ideal_fraction: Double
}

struct CreatedMigration: Decodable {
    let id: String?
    let plan: PlanBody
}

struct MigrationList: Decodable {
    struct Item: Decodable {
        let id: String
        let kind: String?
        let phase: String
        let moves: Int?
        let rows_copied: Int?
        let rows_estimated: Int?
        let error: String?
    }
    let migrations: [Item]

    /// Every migration, oldest first, a line each.
    var table: String {
        guard !migrations.isEmpty else { return "no migrations yet" }
        let header = ["id", "kind", "phase", "moves", "rows copied", "error"]
        let rows = migrations.map { item in
            [
                item.id, item.kind ?? "", item.phase, item.moves.map(String.init) ?? "",
                "\(item.rows_copied ?? 0)" + (item.rows_estimated.map { " of \($0)" } ?? ""), item.error ?? "",
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}

/// One migration's status: in full, or the short form of a migration whose journal the server
/// could not read (its id, `failed`, and why).
enum MigrationStatusAnswer: Decodable {
    case full(MigrationStatusBody)
    case short(MigrationList.Item)

    init(from decoder: any Decoder) throws {
        if let full = try? MigrationStatusBody(from: decoder) {
            self = .full(full)
        } else {
            self = .short(try MigrationList.Item(from: decoder))
        }
    }

    /// What `migrate status ID` prints.
    var text: String {
        switch self {
        case .full(let status): MigrationText.status(status)
        case .short(let item):
            "migration \(item.id) (\(item.kind ?? "unknown")): \(item.phase)" + (item.error.map { "\n  error: \($0)" } ?? "")
        }
    }
}

struct MigrationStatusBody: Decodable {
    struct Stream: Decodable {
        let position: UInt64
        let backlog: Int?
        let lag_ms: UInt64
    }
    struct Pause: Decodable {
        let writes_held: Int
        let p50_ms: Double
        let p99_ms: Double
        let max_ms: Double
    }
    let id: String
    let kind: String
    let phase: String
    let moves: Int
    let rows_copied: Int
    let rows_estimated: Int?
    let error: String?
    let forward: [String: Stream]
    let change_capture: [String: String]?
    let cutover_attempts: Int
    let write_pauses: [Pause]
    let cutover_steps: [Step]
    let rows_deleted: Int
    let tombstones_purged: Int
    let mismatches: [String]
    let throttle: Throttle?
    /// The proof: what it waits for, the canary, the shadow reads, the verification.
    let awaiting_approval: ProofStatus.Awaiting?
    let canary: ProofStatus.Canary?
    let shadow_reads: ProofStatus.Shadow?
    let verification: VerificationSummary?
    /// When each phase began, oldest first (the watch's rate and ETA come from it).
    let phases: [PhaseMark]?

    struct PhaseMark: Decodable {
        let phase: String
        let at_ms: UInt64
    }

    struct Step: Decodable {
        let step: String
        let ms: Double
    }

    struct Throttle: Decodable {
        let chunk_rows: Int?
        let reason: String?
    }
}

enum MigrationText {
    static func plan(_ plan: PlanBody) -> String {
        var lines = [
            "\(plan.kind): generation \(plan.from_generation) → \(plan.to_generation), \(plan.moves.count) moves, "
                + "\(plan.rows) rows (\(bytes(plan.bytes))), "
                + String(format: "%.1f %% of the hash space (ideal %.1f %%)", plan.moved_fraction * 100, plan.ideal_fraction * 100)
        ]
        var bySource: [String: (moves: Int, rows: Int)] = [:]
        for move in plan.moves {
            let key = "\(move.source) → \(move.target)"
            bySource[key] = ((bySource[key]?.moves ?? 0) + 1, (bySource[key]?.rows ?? 0) + move.rows)
        }
        lines += [""]
        lines += TextTable.render(
            header: ["FROM → TO", "RANGES", "ROWS"],
            rows: bySource.sorted { $0.key < $1.key }.map { [$0.key, String($0.value.moves), String($0.value.rows)] },
            rightAligned: [1, 2])
        return lines.joined(separator: "\n")
    }

    static func status(_ status: MigrationStatusBody) -> String {
        var lines = ["migration \(status.id) (\(status.kind)): \(status.phase)"]
        let estimate = status.rows_estimated ?? 0
        lines.append("  copied   \(status.rows_copied) of \(estimate) rows, \(status.moves) moves")
        let lag = status.forward.sorted { $0.key < $1.key }.map {
            "\($0.key) \($0.value.backlog.map(String.init) ?? "?") changes/\($0.value.lag_ms) ms"
        }
        if !lag.isEmpty { lines.append("  lag      " + lag.joined(separator: ", ")) }
        // Shards that share a way of capturing changes are named together.
        let captures = Dictionary(grouping: (status.change_capture ?? [:]).sorted { $0.key < $1.key }, by: \.value)
        if !captures.isEmpty {
            lines.append(
                "  capture  "
                    + captures.sorted { $0.key < $1.key }.map { "\($0.value.map(\.key).joined(separator: " ")): \($0.key)" }.joined(
                        separator: "; "))
        }
        if !status.cutover_steps.isEmpty {
            lines.append(
                "  cutover  "
                    + status.cutover_steps.map { String(format: "%@ %.1f ms", $0.step as NSString, $0.ms) }.joined(separator: " · "))
        }
        for pause in status.write_pauses {
            lines.append(
                String(
                    format: "  pause    %d writes held, p50 %.2f ms, p99 %.2f ms, max %.2f ms", pause.writes_held, pause.p50_ms,
                    pause.p99_ms, pause.max_ms))
        }
        if let reason = status.throttle?.reason { lines.append("  throttle \(reason) (chunk \(status.throttle?.chunk_rows ?? 0) rows)") }
        if status.rows_deleted > 0 || status.tombstones_purged > 0 {
            lines.append(
                "  cleanup  \(status.rows_deleted) rows deleted from the old owners, \(status.tombstones_purged) old tombstones purged")
        }
        lines += VerificationText.status(status)
        if let error = status.error { lines.append("  error    \(error)") }
        for mismatch in status.mismatches.prefix(5) { lines.append("  mismatch \(mismatch)") }
        return lines.joined(separator: "\n")
    }

    static func bytes(_ count: Int) -> String {
        count >= 1 << 20 ? String(format: "%.1f MiB", Double(count) / 1_048_576) : String(format: "%.1f KiB", Double(count) / 1024)
    }
}

/// `--watch`: one line redrawn in place with a progress bar, rate and ETA, until the end.
enum MigrationWatch {
    /// Redraws the migration's progress until it ends; throws (so the command exits non-zero)
    /// unless it ended done.
    static func watch(_ api: AdminAPI, id: String) async throws {
        var lastPhase = ""
        while true {
            let status: MigrationStatusBody = try await api.get("/v1/migrations/\(id)")
            if status.phase != lastPhase {
                if !lastPhase.isEmpty { print("") }
                lastPhase = status.phase
            }
            let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
            let rate = ProgressLine.copyRate(copied: status.rows_copied, phases: status.phases ?? [], nowMillis: now)
            var line = ProgressLine.render(phase: status.phase, copied: status.rows_copied, estimated: status.rows_estimated, rate: rate)
            if let awaiting = status.awaiting_approval {
                line = "\(status.phase): waiting for approval \(awaiting.gate) (reshard migrate approve \(id))"
            } else if let percent = status.canary?.percent {
                line = String(format: "canary: %.0f %% of the moving ranges' reads shadow-read from the new owners", percent)
            }
            FileHandle.standardOutput.write(Data(("\r" + line + "   ").utf8))
            if ["done", "rolled_back", "failed"].contains(status.phase) {
                print("\n" + MigrationText.status(status))
                try requireDone(status)
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Throws unless the migration ended done: a script that waits for a migration must be
    /// able to tell a failure or a rollback from success by the exit status.
    static func requireDone(_ status: MigrationStatusBody) throws {
        guard status.phase != "done" else { return }
        throw CLIError("migration \(status.id) ended \(status.phase)" + (status.error.map { ": \($0)" } ?? ""))
    }
}

/// A migration's progress as one line: phase, bar, share, rows, rate and ETA.
enum ProgressLine {
    /// Rows copied per second since the copy began, by the server's phase log (the copy may
    /// have begun long before the watch did): up to the end of copying once it has ended, else
    /// up to `nowMillis`.
    static func copyRate(copied: Int, phases: [MigrationStatusBody.PhaseMark], nowMillis: UInt64) -> Double {
        guard let start = phases.lastIndex(where: { $0.phase == "copying" }) else { return 0 }
        let began = phases[start].at_ms
        let ended = phases.indices.contains(start + 1) ? phases[start + 1].at_ms : nowMillis
        guard ended > began else { return 0 }
        return Double(copied) / (Double(ended - began) / 1_000)
    }

    static func render(phase: String, copied: Int, estimated: Int?, rate: Double) -> String {
        let total = max(estimated ?? 0, copied, 1)
        let fraction = min(1, Double(copied) / Double(total))
        let filled = Int(fraction * 30)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: 30 - filled)
        let eta = rate > 0 && fraction < 1 ? String(format: "ETA %.0fs", Double(total - copied) / rate) : ""
        return String(
            format: "%-12@ %@ %5.1f %%  %d/%d rows  %.0f rows/s  %@", phase as NSString, bar as NSString, fraction * 100, copied, total,
            rate, eta as NSString)
    }
}
