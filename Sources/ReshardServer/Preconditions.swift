import HTTPTypes
import Hummingbird
import ReshardCore
import ReshardEngine

/// Conditional requests on rows (RFC 9110 §13): a row's entity tag is its version, as a strong
/// tag (`"17"`). `If-Match` and `If-None-Match` on a write become a `WriteCondition` that the
/// owning shard checks in the write's transaction; on a read they answer 412 or 304.
enum Preconditions {
    /// The most entity tags one header may list: enough for any real client, small enough that
    /// a hostile list costs nothing.
    static let maxTags = 64

    /// The entity tag of a row at `version`.
    static func etag(_ version: UInt64) -> String { "\"\(version)\"" }

    /// A header's tags: `*`, or the versions named by tags (strong only when `strong`, as
    /// `If-Match` compares; `If-None-Match` compares weakly). `nil` when the header is absent;
    /// `400 invalid_precondition` when it does not follow the grammar.
    static func tags(_ request: Request, _ name: HTTPField.Name, strong: Bool) throws -> WriteCondition.Tags? {
        let values = request.headers[values: name]
        guard !values.isEmpty else { return nil }
        guard let tags = parse(values.joined(separator: ","), strong: strong) else {
            throw APIError(
                .badRequest, code: "invalid_precondition",
                message: "\(name.canonicalName) must be * or a list of entity tags such as \"17\" (at most \(maxTags))")
        }
        return tags
    }

    /// The write condition a PUT or DELETE carries, if any.
    static func condition(_ request: Request) throws -> WriteCondition? {
        let condition = WriteCondition(
            ifMatch: try tags(request, .ifMatch, strong: true), ifNoneMatch: try tags(request, .ifNoneMatch, strong: false))
        return condition.isEmpty ? nil : condition
    }

    /// A GET or HEAD's preconditions, read before the row so that a malformed header is a 400
    /// whether or not the row exists.
    struct Read {
        let ifMatch: WriteCondition.Tags?
        let ifNoneMatch: WriteCondition.Tags?

        init(_ request: Request) throws {
            ifMatch = try Preconditions.tags(request, .ifMatch, strong: true)
            ifNoneMatch = try Preconditions.tags(request, .ifNoneMatch, strong: false)
        }

        /// What the read of a row at `version` answers: 412 when `If-Match` fails, 304 (with
        /// the tag) when `If-None-Match` matches; nil to answer as usual.
        func answer(version: UInt64) throws -> Response? {
            if let ifMatch, !WriteCondition(ifMatch: ifMatch).admits(live: version) {
                throw APIError(RouterError.preconditionFailed)
            }
            if let ifNoneMatch, !WriteCondition(ifNoneMatch: ifNoneMatch).admits(live: version) {
                return Response(status: .notModified, headers: [.eTag: etag(version)])
            }
            return nil
        }
    }

    /// `*` or `#entity-tag` (RFC 9110 §8.8.3): tags separated by commas and optional
    /// whitespace, each `"…"` or `W/"…"` with visible ASCII (or obs-text) inside. A tag that is
    /// not a version of ours in canonical decimal is valid but matches nothing.
    static func parse(_ text: String, strong: Bool) -> WriteCondition.Tags? {
        let trimmed = text.utf8.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
        if trimmed.elementsEqual("*".utf8) { return .any }
        var versions: Set<UInt64> = []
        var count = 0
        var bytes = trimmed[...]
        while true {
            bytes = bytes.drop(while: isSpace)
            var weak = false
            if bytes.starts(with: "W/".utf8) {
                weak = true
                bytes = bytes.dropFirst(2)
            }
            guard bytes.first == UInt8(ascii: "\"") else { return nil }
            bytes = bytes.dropFirst()
            guard let close = bytes.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            let opaque = bytes[..<close]
            // etagc: %x21 / %x23-7E / obs-text.
            guard opaque.allSatisfy({ $0 == 0x21 || (0x23...0x7E).contains($0) || $0 >= 0x80 }) else { return nil }
            count += 1
            guard count <= maxTags else { return nil }
            if !(weak && strong), let version = canonicalVersion(opaque) { versions.insert(version) }
            bytes = bytes[bytes.index(after: close)...].drop(while: isSpace)
            guard let next = bytes.first else { return .versions(versions) }
            guard next == UInt8(ascii: ",") else { return nil }
            bytes = bytes.dropFirst()
        }
    }

    /// The version an opaque tag names: decimal digits as `etag` writes them (no sign, no
    /// leading zero), within 64 bits.
    private static func canonicalVersion(_ opaque: some Collection<UInt8>) -> UInt64? {
        guard let first = opaque.first, opaque.count <= 20, first != UInt8(ascii: "0") || opaque.count == 1 else { return nil }
        guard opaque.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(String(decoding: opaque, as: UTF8.self))
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
