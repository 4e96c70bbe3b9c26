import ReshardCore

/// A row body: a JSON object, kept as the client's exact text plus the top-level fields the
/// router reads (primary key and shard key). Storing the text verbatim keeps checksums equal on
/// every backend and returns to clients exactly what they wrote; `StrictJSON` says which texts
/// are accepted.
struct JSONObject: Sendable {
    /// The client's JSON text.
    let text: String
    private let fields: [String: StrictJSON.Member]

    /// Parses `bytes`; throws `invalid_body` unless they are one JSON object in UTF-8.
    init(bytes: [UInt8]) throws(RouterError) {
        do {
            (text, fields) = try StrictJSON.object(bytes)
        } catch {
            throw .invalidBody(error.description)
        }
    }

    /// The field's value, if the body has it.
    subscript(field: String) -> StrictJSON.Member? { fields[field] }
}
