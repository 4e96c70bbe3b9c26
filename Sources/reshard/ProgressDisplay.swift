import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a progress line becomes on the output, decided without doing any output: on a terminal
/// the line is redrawn in place (carriage return, erase line); on a file or a pipe, where a log or
/// a script reads it, each line is appended whole and never holds a carriage return or an escape,
/// at most every `plainEveryMillis` while the state it shows stays the same (a change of state,
/// such as a new phase or canary step, is always shown).
struct ProgressFrames: Sendable {
    let isTerminal: Bool
    let plainEveryMillis: UInt64
    /// Whether a redrawn line is on the screen without its line break.
    private var drawn = false
    private var lastState: String?
    private var lastPlainAt: UInt64?
    /// The last line appended to a file or pipe, so that ending a phase does not repeat it.
    private var lastPlain: String?

    static let eraseLine = "\r\u{1B}[K"

    init(isTerminal: Bool, plainEveryMillis: UInt64) {
        self.isTerminal = isTerminal
        self.plainEveryMillis = plainEveryMillis
    }

    /// The text that shows `line`, which belongs to `state`, at `nowMillis`; empty when nothing is due.
    mutating func update(_ line: String, state: String, nowMillis: UInt64) -> String {
        let changed = state != lastState
        lastState = state
        if isTerminal {
            drawn = true
            return Self.eraseLine + line
        }
        let plain = Self.plain(line)
        guard changed || lastPlainAt.map({ nowMillis >= $0 + plainEveryMillis }) ?? true else { return "" }
        lastPlainAt = nowMillis
        lastPlain = plain
        return plain + "\n"
    }

    /// The text that ends the redrawn line with `line` as a permanent one (on a file or pipe,
    /// nothing when `line` is the one appended last).
    mutating func finish(_ line: String) -> String {
        defer { drawn = false }
        guard isTerminal else {
            let plain = Self.plain(line)
            defer { lastPlain = nil }
            return plain == lastPlain ? "" : plain + "\n"
        }
        return (drawn ? Self.eraseLine : "") + line + "\n"
    }

    /// `line` without carriage returns, escapes and trailing blanks, whatever the server's text held.
    static func plain(_ line: String) -> String {
        var scalars = String.UnicodeScalarView(line.unicodeScalars.filter { $0 != "\r" && $0 != "\u{1B}" && $0 != "\n" })
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}

/// The CLI's one progress renderer (the demo and every `--watch`): `ProgressFrames` written to
/// standard output as they come. Shared by the demo loader's tasks, so its frames sit behind a lock.
final class ProgressDisplay: Sendable {
    let isTerminal: Bool
    private let frames: Mutex<ProgressFrames>

    /// A renderer for standard output, which is a terminal or not.
    init(isTerminal: Bool = isatty(STDOUT_FILENO) != 0, plainEveryMillis: UInt64 = 2_000) {
        self.isTerminal = isTerminal
        frames = Mutex(ProgressFrames(isTerminal: isTerminal, plainEveryMillis: plainEveryMillis))
    }

    /// Shows `line` (redrawn on a terminal; appended when due elsewhere).
    func update(_ line: String, state: String = "", nowMillis: UInt64 = wallMillisNow()) {
        emit(frames.withLock { $0.update(line, state: state, nowMillis: nowMillis) })
    }

    /// Ends the redrawn line with a permanent one.
    func finish(_ line: String) {
        emit(frames.withLock { $0.finish(line) })
    }
}

/// Writes `text` to standard output at once: progress must show as it happens also when the
/// output goes to a file or a pipe, where `print` would buffer it.
func emit(_ text: String) {
    guard !text.isEmpty else { return }
    // What `print` buffered (a plan, "migration … started") goes out first, in order.
    fflush(nil)
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Wall time in milliseconds.
func wallMillisNow() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }
