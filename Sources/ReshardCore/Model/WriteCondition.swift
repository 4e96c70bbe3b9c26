/// A client write's precondition on the row it replaces (HTTP's `If-Match` and
/// `If-None-Match`, RFC 9110 §13.1): evaluated by the owning shard inside the write's own
/// transaction, so a read-modify-write that names the version it read cannot overwrite a
/// write it did not see, whichever router or migration phase carried the other write.
///
/// A row's entity tag is its version. A tombstone or a row the shard never saw has no current
/// representation: it matches no tag, and `*` neither.
public struct WriteCondition: Sendable, Hashable {
    /// The tags a header names.
    public enum Tags: Sendable, Hashable {
        /// `*`: any current representation.
        case any
        /// A list of versions; tags that are not versions of ours are left out, since they can
        /// never match.
        case versions(Set<UInt64>)

        func matches(_ live: UInt64?) -> Bool {
            guard let live else { return false }
            switch self {
            case .any: return true
            case .versions(let versions): return versions.contains(live)
            }
        }
    }

    /// `If-Match`: the write goes ahead only when the row is live with one of these versions.
    public var ifMatch: Tags?
    /// `If-None-Match`: the write goes ahead only when the row is not live with one of these.
    /// `*` is create-only.
    public var ifNoneMatch: Tags?

    /// A condition; `nil` parts are not checked.
    public init(ifMatch: Tags? = nil, ifNoneMatch: Tags? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
    }

    /// Only when the row is live at `version`.
    public static func version(_ version: UInt64) -> WriteCondition { WriteCondition(ifMatch: .versions([version])) }

    /// Only when the row is not live (create-only).
    public static let absent = WriteCondition(ifNoneMatch: .any)

    /// Whether neither part is set.
    public var isEmpty: Bool { ifMatch == nil && ifNoneMatch == nil }

    /// Whether a write may replace a row whose live version is `live` (`nil`: absent or a
    /// tombstone). Both parts must pass, as RFC 9110 evaluates them for a write.
    public func admits(live: UInt64?) -> Bool {
        if let ifMatch, !ifMatch.matches(live) { return false }
        if let ifNoneMatch, ifNoneMatch.matches(live) { return false }
        return true
    }
}
