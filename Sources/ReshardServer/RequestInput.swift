import Foundation
import Hummingbird
import ReshardCore

/// The parts of a request that come from the client, read strictly: a malformed escape, bytes
/// that are not UTF-8 or an ambiguous repeat is a 400, never repaired into something else.
/// (Hummingbird hands path parameters over raw and, in query strings, keeps a malformed escape
/// as typed and turns bytes that are not UTF-8 into U+FFFD, so a key could silently change.)
enum RequestInput {
    /// A percent-decoded path parameter; `invalid_path` when the escape or the UTF-8 is malformed.
    static func path(_ context: BasicRequestContext, _ name: String) throws -> String {
        guard let raw = context.parameters.get(name) else {
            throw APIError(.badRequest, code: "invalid_path", message: "missing \(name) in the path")
        }
        guard let decoded = percentDecoded(raw.utf8) else {
            throw APIError(
                .badRequest, code: "invalid_path", message: "the \(name) in the path has a malformed %-escape or is not UTF-8")
        }
        return decoded
    }

    /// The query's parameters, percent-decoded (`+` stays a plus: these are URLs, not forms);
    /// `invalid_query` for a malformed escape, bytes that are not UTF-8, or a parameter given twice.
    static func query(_ request: Request) throws -> [String: String] {
        guard let query = request.uri.query, !query.isEmpty else { return [:] }
        var parameters: [String: String] = [:]
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecoded(parts[0]), let value = percentDecoded(parts.count > 1 ? Array(parts[1]) : []) else {
                throw APIError(
                    .badRequest, code: "invalid_query", message: "a query parameter has a malformed %-escape or is not UTF-8")
            }
            guard parameters.updateValue(value, forKey: name) == nil else {
                throw APIError(.badRequest, code: "invalid_query", message: "the query parameter \(name) is given more than once")
            }
        }
        return parameters
    }

    /// A count from the query: digits only (`Int` also takes a sign), within `range`; else
    /// `400 invalid_<name>`.
    static func count(_ text: String?, name: String, in range: ClosedRange<Int>, default value: Int) throws -> Int {
        guard let text else { return value }
        guard let digits = unsigned(text), let parsed = Int(exactly: digits), range.contains(parsed) else {
            throw APIError(.badRequest, code: "invalid_\(name)", message: "\(name) must be \(range.lowerBound)…\(range.upperBound)")
        }
        return parsed
    }

    /// `text` as an unsigned number: ASCII digits only (no sign, space or `+`, which `UInt64`
    /// would take or refuse unevenly), at most 2^64-1; else nil.
    static func unsigned(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(text)
    }

    /// Refuses a body whose declared type is not JSON (`415 unsupported_media_type`). A request
    /// without a Content-Type is read as JSON, as the routes document.
    static func requireJSON(_ request: Request) throws {
        guard let type = request.headers[.contentType] else { return }
        let mediaType = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard mediaType == "application/json" else {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                message: "the body must be application/json, not \(type.prefix(100))")
        }
    }

    /// The bytes of `escaped` with each `%XX` decoded, as UTF-8 text; `nil` when an escape is
    /// malformed or the bytes are not UTF-8.
    static func percentDecoded(_ escaped: some Collection<UInt8>) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(escaped.count)
        var iterator = escaped.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(HexDigit.value), let low = iterator.next().flatMap(HexDigit.value) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
