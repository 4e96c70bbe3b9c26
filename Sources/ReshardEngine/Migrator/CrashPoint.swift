import Foundation
import ReshardCore
import Synchronization

/// A point of a migration at which the process kills itself with SIGKILL, for crash testing: the
/// same abrupt end as `kill -9`, but at an exact step of the protocol rather than wherever a timer
/// happens to land. Set by `RESHARD_CRASH_AT` and never by default.
///
/// The text form is `PHASE[:STEP][#N]`: the N-th round (default 1) that ends in `PHASE`, and for
/// `cutting_over` or `rolling_back` with the cutover waiting on `STEP` or a later step. The kill
/// happens after the round's work is done and before it is journaled, so the restarted process
/// redoes that round. Examples: `copying#3`, `cutting_over:publish`, `baking`.
///
/// "Or a later step" is what makes every step reachable: a step with nothing to do is passed
/// within the round before it. When no change landed between the last catch-up read and the
/// fence, the fence's round ends waiting on publish, and `cutting_over:drain` kills there: the
/// same moment, fenced and not yet switched, with an empty drain.
public final class CrashPoint: Sendable {
    /// The phase to crash in.
    public let phase: MigrationPhase
    /// The cutover step the machine must be waiting on, if any.
    public let step: CutoverStep?
    /// Which matching round crashes (1 is the first).
    public let round: Int
    private let seen = Mutex(0)

    /// Parses the text form; nil when it is malformed.
    public init?(_ text: String) {
        var rest = Substring(text)
        var round = 1
        if let hash = rest.firstIndex(of: "#") {
            guard let value = Int(rest[rest.index(after: hash)...]), value >= 1 else { return nil }
            round = value
            rest = rest[..<hash]
        }
        var step: CutoverStep?
        if let colon = rest.firstIndex(of: ":") {
            guard let value = CutoverStep(rawValue: String(rest[rest.index(after: colon)...])) else { return nil }
            step = value
            rest = rest[..<colon]
        }
        guard let phase = MigrationPhase(rawValue: String(rest)) else { return nil }
        self.phase = phase
        self.step = step
        self.round = round
    }

    /// Whether a round that ends in `phase` with the cutover waiting on `step` matches this point.
    public func matches(phase: MigrationPhase, step: CutoverStep?) -> Bool {
        guard phase == self.phase else { return false }
        guard let wanted = self.step else { return true }
        return step.map { $0 >= wanted } ?? false
    }

    /// Whether this round is the one to crash in (counts matching rounds).
    public func isReached(by machine: MigrationStateMachine) -> Bool {
        guard matches(phase: machine.phase, step: machine.cutover?.step) else { return false }
        return seen.withLock { count in
            count += 1
            return count == round
        }
    }

    /// A round hook that kills the process at this point.
    public var hook: MigrationRoundHook {
        { machine in
            if self.isReached(by: machine) {
                let at = machine.cutover.map { "\(machine.phase.rawValue):\($0.step.rawValue)" } ?? machine.phase.rawValue
                FileHandle.standardError.write(Data("reshard: crash point reached at \(at); SIGKILL\n".utf8))
                kill(getpid(), SIGKILL)
            }
            return []
        }
    }
}
