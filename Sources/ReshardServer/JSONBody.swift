import Foundation
import Hummingbird
import ReshardAPI
import ReshardCore

/// Decodes a JSON body of at most `maxBytes`: refused with 415 unless it is declared JSON (or
/// not declared), and with 400 `invalid_body` unless it is one strict UTF-8 JSON object
/// (`StrictJSON`) with the documented fields; a bad value names its field, and a bad value
/// under `options` is `invalid_option`.
func decodeJSON<T: Decodable>(_ request: Request, maxBytes: Int) async throws -> T {
    try RequestInput.requireJSON(request)
    return try decodeJSON(Array(buffer: try await request.body.collect(upTo: maxBytes)))
}

/// Decodes `bytes` as `decodeJSON(_:maxBytes:)` does, once they are read.
func decodeJSON<T: Decodable>(_ bytes: [UInt8]) throws -> T {
    do {
        _ = try StrictJSON.object(bytes)
    } catch {
        throw APIError.invalidBody("the body must be one JSON object in UTF-8: \(error)")
    }
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch let error as DecodingError {
        throw APIError(decoding: error)
    } catch let error as API.OptionError {
        throw APIError(option: error)
    }
}

extension APIError {
    /// The answer to a body that is JSON but not of the documented shape, naming the field.
    init(decoding error: DecodingError) {
        let path: [any CodingKey]
        let problem: String
        switch error {
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
            problem = "is missing"
        case .typeMismatch(_, let context), .dataCorrupted(let context):
            path = context.codingPath
            problem = "has the wrong type or is out of range"
        case .valueNotFound(_, let context):
            path = context.codingPath
            problem = "must not be null"
        @unknown default:
            path = []
            problem = "is not as documented"
        }
        let field = path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        let named = field.isEmpty ? "the body \(problem)" : "\(field) \(problem)"
        let code = path.first?.stringValue == "options" ? "invalid_option" : "invalid_body"
        self.init(.badRequest, code: code, message: named)
    }
}

extension APIError {
    /// The answer to a migration option the API's decoder refused: an unknown one is named with
    /// the list of options; a malformed one with its rule from the core (`MigrationSettings`),
    /// the same words a value out of bounds is answered with.
    init(option error: API.OptionError) {
        let message: String
        if error.reason == .unknown {
            message = "unknown option \(error.option.prefix(64)); options are \(API.MigrationOptions.names.joined(separator: ", "))"
        } else {
            message = "\(error.option) must be \(MigrationSettings.rules[error.option] ?? "a list of strings")"
        }
        self.init(.badRequest, code: "invalid_option", message: message)
    }
}
