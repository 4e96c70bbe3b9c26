import Foundation
import ReshardAPI

/// `--json`: the API's wire JSON as one document on standard output, keys sorted and indented so
/// that the same answer always prints the same text (scripts diff it, `jq` reads it).
enum WireJSON {
    static func text(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Prints `value` as the command's one document.
    static func print(_ value: some Encodable) throws {
        Swift.print(try text(value))
    }
}
