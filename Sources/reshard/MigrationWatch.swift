import Foundation
import ReshardAPI

/// `--watch` and the creating commands' wait: the migration's progress through the one
/// `ProgressDisplay`, until it ends.
enum MigrationWatch {
    /// Polls and shows the migration until it ends; throws (so the command exits non-zero)
    /// unless it ended done.
    static func watch(_ api: AdminAPI, id: String, display: ProgressDisplay = ProgressDisplay(plainEveryMillis: 5_000)) async throws {
        var lastPhase: String?
        var lastLine = ""
        while true {
            let status: API.MigrationDetail = try await api.get("/v1/migrations/\(id)")
            let now = wallMillisNow()
            if let lastPhase, lastPhase != status.phase { display.finish(lastLine) }
            lastPhase = status.phase
            lastLine = WatchLine.render(status, nowMillis: now)
            if ended(status.phase) {
                display.finish(lastLine)
                print(MigrationText.status(status, nowMillis: now))
                try requireDone(status)
                return
            }
            display.update(lastLine, state: WatchLine.state(status), nowMillis: now)
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Whether a watch stops at `phase`: the end, or a failure (which waits for an operator).
    static func ended(_ phase: String) -> Bool { ["done", "rolled_back", "failed"].contains(phase) }

    /// Throws unless the migration ended done: a script that waits for a migration must be
    /// able to tell a failure or a rollback from success by the exit status.
    static func requireDone(_ status: API.MigrationDetail) throws {
        guard status.phase != "done" else { return }
        throw CLIError("migration \(status.id) ended \(status.phase)" + (status.error.map { ": \($0)" } ?? ""))
    }
}

/// One line of a watched migration: what it waits for and for how long, the bake's and the
/// canary's countdowns, or the copy's bar, rate and ETA.
enum WatchLine {
    static func render(_ status: API.MigrationDetail, nowMillis: UInt64) -> String {
        if let awaiting = status.awaitingApproval {
            let waited = awaiting.waitingMs.map { " for \(Countdown.text($0))" } ?? ""
            return "\(status.phase): waiting\(waited) for approval of \(awaiting.gate) (reshard migrate approve \(status.id))"
        }
        if let countdown = countdown(status, nowMillis: nowMillis) { return countdown }
        let rate = ProgressLine.copyRate(copied: status.rowsCopied, phases: status.phases, nowMillis: nowMillis)
        return ProgressLine.render(phase: status.phase, copied: status.rowsCopied, estimated: status.rowsEstimated, rate: rate)
    }

    /// The bake's time left, or the canary's step and time to the next; nil in other phases.
    static func countdown(_ status: API.MigrationDetail, nowMillis: UInt64) -> String? {
        switch status.phase {
        case "baking":
            guard let until = status.bakeUntilMs else { return nil }
            let left = until > nowMillis ? "\(Countdown.text(until - nowMillis)) left" : "ending"
            return "baking: \(left) of a \(Countdown.text(status.bakeMs)) bake (the old owners stay current; rollback loses nothing)"
        case "canary":
            let canary = status.canary
            guard let step = canary.step, canary.steps.indices.contains(step) else { return nil }
            let share = String(format: "%g %% of the moving ranges' reads shadow-read", canary.steps[step])
            let position = "canary step \(step + 1)/\(canary.steps.count): \(share)"
            guard let end = canary.stepEndsMs else { return position }
            let last = step + 1 == canary.steps.count
            guard end > nowMillis else { return position + ", checking the step's shadow reads" }
            let next =
                last
                ? "cutover in \(Countdown.text(end - nowMillis)) at the earliest"
                : String(format: "%g %% in %@", canary.steps[step + 1], Countdown.text(end - nowMillis))
            return position + ", " + next
        default:
            return nil
        }
    }

    /// What the line shows, apart from figures that change every poll: a change of it is always
    /// printed, also to a file.
    static func state(_ status: API.MigrationDetail) -> String {
        [status.phase, status.canary.step.map(String.init) ?? "", status.awaitingApproval?.gate ?? ""].joined(separator: "/")
    }
}

/// A duration for a reader: `42 s`, `4 min 05 s`, `1 h 02 min`.
enum Countdown {
    static func text(_ millis: UInt64) -> String {
        let seconds = millis / 1_000 + (millis % 1_000 > 0 ? 1 : 0)
        if seconds < 60 { return "\(seconds) s" }
        func two(_ value: UInt64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if seconds < 3_600 { return "\(seconds / 60) min \(two(seconds % 60)) s" }
        return "\(seconds / 3_600) h \(two((seconds % 3_600) / 60)) min"
    }
}
