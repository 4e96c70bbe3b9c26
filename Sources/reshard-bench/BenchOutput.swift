import Foundation

/// Writes a line to standard output at once: a long run's progress must show as it happens
/// also when the output goes to a file or a pipe, where `print` would buffer it.
func say(_ text: String = "") {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// `value` with thousands separators (`1,000,000`), as the tables print row counts.
func grouped(_ value: Int) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.groupingSeparator = ","
    return formatter.string(from: NSNumber(value: value)) ?? String(value)
}

/// A run that cannot produce meaningful figures, with the reason.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Optional {
    func orThrow(_ what: String) throws -> Wrapped {
        guard let self else { throw BenchError("invalid \(what)") }
        return self
    }
}
