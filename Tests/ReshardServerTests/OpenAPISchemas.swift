import Foundation

/// The members each object schema of openapi.yaml requires and defines, read from the
/// document's text. Only as much YAML as this document uses: a schema named at 4 spaces under
/// `components/schemas`, its `required: [...]` at 6 (over one or more lines), its properties
/// at 8 under `properties:`.
struct OpenAPISchemas {
    struct Schema {
        let required: Set<String>
        let properties: Set<String>
    }

    private let lines: [Substring]

    init() throws {
        let text = try String(contentsOf: OpenAPIDocumentTests.repositoryDocument, encoding: .utf8)
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// The schema `name`, or nil when the document has no object schema of that name.
    func schema(_ name: String) -> Schema? {
        guard let components = lines.firstIndex(of: "  schemas:"),
            let start = lines[components...].firstIndex(of: "    \(name):")
        else { return nil }
        let body = lines[(start + 1)...].prefix { $0.isEmpty || Self.indentation($0) > 4 }
        var required: Set<String> = []
        if let first = body.firstIndex(where: { $0.hasPrefix("      required: [") }) {
            var list = ""
            for line in body[first...] {
                list += line
                if line.contains("]") { break }
            }
            let inside = list.drop { $0 != "[" }.dropFirst().prefix { $0 != "]" }
            required = Set(inside.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        var properties: Set<String> = []
        if let header = body.firstIndex(of: "      properties:") {
            for line in body[(header + 1)...].prefix(while: { $0.isEmpty || Self.indentation($0) > 6 })
            where Self.indentation(line) == 8 {
                properties.insert(String(line.dropFirst(8).prefix { $0 != ":" }))
            }
        }
        return Schema(required: required, properties: properties)
    }

    private static func indentation(_ line: Substring) -> Int {
        line.prefix { $0 == " " }.count
    }
}
