import Foundation
import ReshardAPI
import Testing

@testable import reshard

/// The one progress renderer: redrawn in place on a terminal, plain appended lines elsewhere;
/// the watch's lines with the bake's and the canary's countdowns; the exit a script relies on.
@Suite struct WatchRendererTests {
    static let escape: Character = "\u{1B}"

    static func detail(
        phase: String, bakeUntilMs: UInt64? = nil, canaryStep: Int? = nil, stepEndsMs: UInt64? = nil, error: String? = nil
    ) -> API.MigrationDetail {
        API.MigrationDetail(
            summary: API.MigrationSummary(
                id: "m1", kind: "add_shard", phase: phase, moves: 3, rowsCopied: 500, rowsEstimated: 1_000, error: error,
                startedMs: 1_796_598_150_000, endedMs: nil),
            interrupted: nil, fromGeneration: 1, toGeneration: 2, copyTasksDone: 1, copyTasks: 3, forward: [:], reverse: [:],
            changeCapture: ["s1": "triggers"], cutoverStep: nil, cutoverAttempts: 0,
            phases: [API.PhaseMark(phase: "copying", atMs: 1_000)], cutoverSteps: [], throttle: API.Throttle(chunkRows: 100, reason: nil),
            writePauses: [], rowsDeleted: 0, tombstonesPurged: 0, rollbackStep: nil, mismatches: [], awaitingApproval: nil, gates: [],
            approved: [], bakeMs: 600_000, bakeUntilMs: bakeUntilMs,
            canary: API.CanaryState(
                steps: [1, 10, 50, 100], stepMs: 30_000, step: canaryStep, percent: canaryStep.map { [1.0, 10, 50, 100][$0] },
                passed: false, stepEndsMs: stepEndsMs),
            shadowReads: nil, verification: nil, strategy: "cdc_backfill", routes: nil, secondWrites: nil, replay: nil, reads: nil,
            redirects: nil)
    }

    @Test func aFileOrPipeGetsPlainLinesWithoutCarriageReturnsOrEscapes() {
        var frames = ProgressFrames(isTerminal: false, plainEveryMillis: 5_000)
        var output = ""
        let statuses = [
            Self.detail(phase: "copying"), Self.detail(phase: "copying"),
            Self.detail(phase: "canary", canaryStep: 1, stepEndsMs: 20_000),
            Self.detail(phase: "baking", bakeUntilMs: 600_000),
        ]
        for (index, status) in statuses.enumerated() {
            let now = UInt64(10_000 + index * 1_000)
            output += frames.update(WatchLine.render(status, nowMillis: now), state: WatchLine.state(status), nowMillis: now)
        }
        // A line whose text carries control characters (a server's error message) is cleaned too.
        output += frames.finish("migration m1 ended failed: bad\r\u{1B}[2Jthing")
        #expect(!output.contains("\r") && !output.contains(Self.escape), "\(output.debugDescription)")
        let lines = output.split(separator: "\n")
        // The second copying poll came within the interval and changed nothing worth a line.
        #expect(lines.count == 4, "\(lines)")
        #expect(lines[1].hasPrefix("canary step 2/4") && lines[2].hasPrefix("baking:"), "\(lines)")
        #expect(lines[3] == "migration m1 ended failed: bad[2Jthing")
    }

    @Test func aFileGetsAnUnchangedStateAgainOnlyAfterTheInterval() {
        var frames = ProgressFrames(isTerminal: false, plainEveryMillis: 5_000)
        #expect(frames.update("copying 10 %", state: "copying", nowMillis: 0) == "copying 10 %\n")
        #expect(frames.update("copying 20 %", state: "copying", nowMillis: 4_999).isEmpty)
        #expect(frames.update("copying 30 %", state: "copying", nowMillis: 5_000) == "copying 30 %\n")
        #expect(frames.update("catching up  ", state: "catching_up", nowMillis: 5_001) == "catching up\n")
        // Ending the phase with the line just appended does not repeat it; another line is kept.
        #expect(frames.finish("catching up").isEmpty)
        #expect(frames.update("verifying", state: "verifying", nowMillis: 5_002) == "verifying\n")
        #expect(frames.update("verifying 2", state: "verifying", nowMillis: 5_003).isEmpty)
        #expect(frames.finish("verifying 2") == "verifying 2\n")
    }

    @Test func aTerminalGetsTheLineRedrawnInPlace() {
        var frames = ProgressFrames(isTerminal: true, plainEveryMillis: 5_000)
        #expect(frames.update("copying 10 %", state: "copying", nowMillis: 0) == "\r\u{1B}[Kcopying 10 %")
        #expect(frames.update("copying 20 %", state: "copying", nowMillis: 1) == "\r\u{1B}[Kcopying 20 %")
        #expect(frames.finish("done") == "\r\u{1B}[Kdone\n")
        // Nothing redrawn since: the permanent line needs no erase.
        #expect(frames.finish("summary") == "summary\n")
    }

    @Test func theBakeShowsTheTimeLeft() {
        let line = WatchLine.render(Self.detail(phase: "baking", bakeUntilMs: 100_000), nowMillis: 58_000)
        #expect(line.hasPrefix("baking: 42 s left of a 10 min 00 s bake"), "\(line)")
        let over = WatchLine.render(Self.detail(phase: "baking", bakeUntilMs: 100_000), nowMillis: 100_000)
        #expect(over.hasPrefix("baking: ending"), "\(over)")
    }

    @Test func theCanaryShowsItsStepAndTheTimeToTheNext() {
        let second = WatchLine.render(Self.detail(phase: "canary", canaryStep: 1, stepEndsMs: 72_000), nowMillis: 60_000)
        #expect(second == "canary step 2/4: 10 % of the moving ranges' reads shadow-read, 50 % in 12 s", "\(second)")
        let last = WatchLine.render(Self.detail(phase: "canary", canaryStep: 3, stepEndsMs: 200_000), nowMillis: 60_000)
        #expect(last.hasSuffix("cutover in 2 min 20 s at the earliest"), "\(last)")
        let checking = WatchLine.render(Self.detail(phase: "canary", canaryStep: 0, stepEndsMs: 1_000), nowMillis: 2_000)
        #expect(checking.hasSuffix("checking the step's shadow reads"), "\(checking)")
        #expect(
            WatchLine.state(Self.detail(phase: "canary", canaryStep: 0)) != WatchLine.state(Self.detail(phase: "canary", canaryStep: 1)))
    }

    @Test func otherPhasesShowTheCopysBar() {
        let line = WatchLine.render(Self.detail(phase: "copying"), nowMillis: 2_000)
        #expect(line.contains("50.0 %") && line.contains("500/1000 rows"), "\(line)")
        #expect(WatchLine.countdown(Self.detail(phase: "copying"), nowMillis: 2_000) == nil)
    }

    @Test func durationsReadAsSecondsMinutesAndHours() {
        #expect(Countdown.text(0) == "0 s")
        #expect(Countdown.text(1) == "1 s")
        #expect(Countdown.text(59_000) == "59 s")
        #expect(Countdown.text(65_000) == "1 min 05 s")
        #expect(Countdown.text(3_720_000) == "1 h 02 min")
        #expect(Countdown.text(.max).hasSuffix("min"))
    }

    /// A script waiting for a migration tells success from failure by the exit status.
    @Test func onlyDoneEndsAWatchWithoutAnError() throws {
        try MigrationWatch.requireDone(Self.detail(phase: "done"))
        for phase in ["failed", "rolled_back"] {
            #expect(MigrationWatch.ended(phase))
            let error = #expect(throws: CLIError.self) { try MigrationWatch.requireDone(Self.detail(phase: phase, error: "shard s2 down")) }
            #expect(error?.description == "migration m1 ended \(phase): shard s2 down")
        }
        #expect(!MigrationWatch.ended("baking"))
    }
}
