import Foundation

/// A row body: a JSON object, kept as the client's exact text plus the few top-level fields the
/// router reads (primary key and shard key). Storing the text verbatim keeps checksums equal on
/// every backend and returns to clients exactly what they wrote.
struct JSONObject: Sendable {
    /// The client's JSON text.
    let text: String
    private let fields: [String: JSONScalar]

    /// A top-level value the router can read: a key must be a string or an integer.
    enum JSONScalar: Sendable, Hashable, Decodable {
        case string(String)
        case integer(Int64)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .string(text)
            } else if let number = try? container.decode(Int64.self) {
                self = .integer(number)
            } else {
                self = .other
            }
        }

        /// The key's text form: a string as is, an integer in decimal.
        var keyText: String? {
            switch self {
            case .string(let text): text
            case .integer(let number): String(number)
            case .other: nil
            }
        }
    }

    /// Parses `bytes`; throws `invalid_body` unless they are one JSON object in UTF-8.
    init(bytes: [UInt8]) throws(RouterError) {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidBody("the body is not valid UTF-8")
        }
        let decoded: [String: JSONScalar]
        do {
            decoded = try JSONDecoder().decode([String: JSONScalar].self, from: Data(bytes))
        } catch {
            throw .invalidBody("the body must be a JSON object")
        }
        self.text = text
        self.fields = decoded
    }

    /// The field's value, if the body has it.
    subscript(field: String) -> JSONScalar? { fields[field] }
}
