import Foundation
import ReshardAPI

/// Migrations as the CLI prints them, from the API's answers.
enum MigrationText {
    static func plan(_ plan: API.Plan) -> String {
        var lines = [
            "\(plan.kind): generation \(plan.fromGeneration) → \(plan.toGeneration), \(plan.moves.count) moves, "
                + "\(plan.rows) rows (\(bytes(plan.bytes))), "
                + String(format: "%.1f %% of the hash space (ideal %.1f %%)", plan.movedFraction * 100, plan.idealFraction * 100)
        ]
        if let layout = plan.layout {
            lines += layoutLines(layout)
        }
        if let balance = plan.balance { lines.append(balanceLine(balance)) }
        var bySource: [String: (moves: Int, rows: Int)] = [:]
        for move in plan.moves where plan.layout == nil {
            let key = "\(move.source) → \(move.target)"
            bySource[key] = ((bySource[key]?.moves ?? 0) + 1, (bySource[key]?.rows ?? 0) + move.rows)
        }
        if !bySource.isEmpty { lines += [""] }
        lines +=
            bySource.isEmpty
            ? []
            : TextTable.render(
                header: ["FROM → TO", "RANGES", "ROWS"],
                rows: bySource.sorted { $0.key < $1.key }.map { [$0.key, String($0.value.moves), String($0.value.rows)] },
                rightAligned: [1, 2])
        lines += ["", "strategy \(plan.strategy), phase by phase (writes and reads of the moving ranges):"]
        let width = plan.steps.map(\.phase.count).max() ?? 0
        for (index, step) in plan.steps.enumerated() {
            lines.append(
                "  \(index + 1). \(step.phase.padding(toLength: width, withPad: " ", startingAt: 0))  writes \(step.writes), reads \(step.reads)"
            )
            lines.append("     \(String(repeating: " ", count: width))  \(step.does); ends when \(step.until)")
        }
        return lines.joined(separator: "\n")
    }

    /// What a load-aware plan weighs and the balance it predicts.
    static func balanceLine(_ balance: API.BalancePlan) -> String {
        let weights = [
            ("rows", balance.weights.rows), ("requests", balance.weights.requests), ("bytes", balance.weights.bytes),
            ("time", balance.weights.time),
        ].compactMap { name, weight in (weight ?? 0) > 0 ? "\(name) \(weight ?? 0)" : nil }.joined(separator: ", ")
        return String(
            format: "by %@ over %d s of routers %@: busiest shard %.2fx the mean now, %.2fx predicted after", weights, balance.windows,
            balance.routers.joined(separator: ", "), balance.maxOverMean, balance.predictedMaxOverMean)
    }

    /// A shard-key change's dry run: rows, bytes, the spread under the new key, rows without one.
    static func layoutLines(_ layout: API.LayoutPlan) -> [String] {
        var lines = [
            "",
            "table \(layout.table) placed by \(layout.shardKey) from the switch on: \(layout.rows) live rows (\(bytes(layout.bytes))) re-placed, "
                + String(format: "largest shard %.2f× the mean", layout.imbalance),
            "",
        ]
        lines += TextTable.render(
            header: ["SHARD", "ROWS UNDER \(layout.shardKey.uppercased())"],
            rows: layout.rowsPerShard.sorted { $0.key < $1.key }.map { [$0.key, String($0.value)] }, rightAligned: [1])
        if layout.unplaceable > 0 {
            lines += [
                "",
                "\(layout.unplaceable) row(s) have no usable \(layout.shardKey) (a string or an integer), for example "
                    + layout.unplaceableExamples.joined(separator: ", ") + ": the migration will not start until they have one",
            ]
        }
        return lines
    }

    /// Every migration, oldest first, a line each: id, kind, phase, when it started and ended
    /// (UTC), rows copied of the estimate, and the last error.
    static func list(_ list: API.MigrationList) -> String {
        guard !list.migrations.isEmpty else { return "no migrations yet" }
        let rows = list.migrations.map { item in
            [
                item.id, item.kind, item.phase, item.startedMs.map(time) ?? "-", item.endedMs.map(time) ?? "-",
                "\(item.rowsCopied)" + (item.rowsEstimated.map { " of \($0)" } ?? ""), item.error ?? "",
            ]
        }
        return TextTable.render(
            header: ["ID", "KIND", "PHASE", "STARTED", "ENDED", "ROWS COPIED", "ERROR"], rows: rows, rightAligned: []
        ).joined(separator: "\n")
    }

    /// Wall milliseconds as an ISO 8601 UTC time to the second, the same on every machine.
    static func time(_ millis: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1_000))
    }

    /// What `migrate status ID` prints: the full status, or the short form of a migration whose
    /// journal the server could not read (its id, `failed`, and why).
    static func status(_ answer: API.MigrationStatus, nowMillis: UInt64 = wallMillisNow()) -> String {
        switch answer {
        case .detail(let detail): status(detail, nowMillis: nowMillis)
        case .unreadable(let item): "migration \(item.id) (\(item.kind)): \(item.phase)" + (item.error.map { "\n  error: \($0)" } ?? "")
        }
    }

    static func status(_ status: API.MigrationDetail, nowMillis: UInt64 = wallMillisNow()) -> String {
        var lines = ["migration \(status.id) (\(status.kind), \(status.strategy)): \(status.phase)"]
        if let started = status.startedMs {
            lines.append("  started  \(time(started))" + (status.endedMs.map { ", ended \(time($0))" } ?? ""))
        }
        if let countdown = WatchLine.countdown(status, nowMillis: nowMillis) { lines.append("  now      " + countdown) }
        let estimate = status.rowsEstimated ?? 0
        lines.append("  copied   \(status.rowsCopied) of \(estimate) rows, \(status.moves) moves")
        let lag = status.forward.sorted { $0.key < $1.key }.map {
            "\($0.key) \($0.value.backlog.map(String.init) ?? "?") changes/\($0.value.lagMs) ms"
        }
        if !lag.isEmpty { lines.append("  lag      " + lag.joined(separator: ", ")) }
        // Shards that share a way of capturing changes are named together.
        let captures = Dictionary(grouping: status.changeCapture.sorted { $0.key < $1.key }, by: \.value)
        if !captures.isEmpty {
            lines.append(
                "  capture  "
                    + captures.sorted { $0.key < $1.key }.map { "\($0.value.map(\.key).joined(separator: " ")): \($0.key)" }.joined(
                        separator: "; "))
        }
        if !status.cutoverSteps.isEmpty {
            lines.append(
                "  cutover  "
                    + status.cutoverSteps.map { String(format: "%@ %.1f ms", $0.step as NSString, $0.ms) }.joined(separator: " · "))
        }
        for pause in status.writePauses {
            lines.append(
                String(
                    format: "  pause    %d writes held, p50 %.2f ms, p99 %.2f ms, max %.2f ms", pause.writesHeld, pause.p50Ms,
                    pause.p99Ms, pause.maxMs))
        }
        if let routes = status.routes {
            lines.append(
                "  routes   writes \(routes.writes), reads \(routes.reads)"
                    + (routes.shadowPercent > 0 ? String(format: ", %.0f %% shadow-read", routes.shadowPercent) : ""))
        }
        if let replay = status.replay {
            lines.append(
                "  replay   \(replay.recorded) writes recorded by the routers (\(replay.unrecorded) left to the changelog), "
                    + "\(replay.replayed) replayed on the new owners, \(replay.waiting.map(String.init) ?? "?") waiting")
        }
        if let second = status.secondWrites {
            lines.append(
                "  second   \(second.written) second writes taken by the new owners, \(second.queued) queued for retries, "
                    + "\(second.unqueued) left to the changelog" + (second.active ? "" : " (no longer dual-writing)")
                    + "; queue: \(second.waiting) waiting, \(second.retried) retried")
            if second.reconcile {
                lines.append(
                    "  RECONCILE \(second.waiting) second writes wait while retries fail (\(second.retryError ?? "?")); "
                        + "the changelog carries them and verification proves the result")
            }
        }
        if let reason = status.throttle.reason { lines.append("  throttle \(reason) (chunk \(status.throttle.chunkRows ?? 0) rows)") }
        if let ceiling = status.throttle.maxRowsPerSecond { lines.append("  ceiling  \(ceiling) copied rows per second") }
        if status.rowsDeleted > 0 || status.tombstonesPurged > 0 {
            lines.append(
                "  cleanup  \(status.rowsDeleted) rows deleted from the old owners, \(status.tombstonesPurged) old tombstones purged")
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

/// A migration's progress as one line: phase, bar, share, rows, rate and ETA.
enum ProgressLine {
    /// Rows copied per second since the copy began, by the server's phase log (the copy may
    /// have begun long before the watch did): up to the end of copying once it has ended, else
    /// up to `nowMillis`.
    static func copyRate(copied: Int, phases: [API.PhaseMark], nowMillis: UInt64) -> Double {
        guard let start = phases.lastIndex(where: { $0.phase == "copying" }) else { return 0 }
        let began = phases[start].atMs
        let ended = phases.indices.contains(start + 1) ? phases[start + 1].atMs : nowMillis
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
