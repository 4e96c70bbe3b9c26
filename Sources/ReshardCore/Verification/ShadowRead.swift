/// What one shadow read found when it compared the new owner's answer with the old owner's.
public enum ShadowOutcome: Hashable, Sendable {
    /// Both answered the same row at the same version (or both had nothing).
    case match
    /// The new owner is behind by a write recent enough that replication may still be carrying it.
    case lag
    /// A difference replication cannot explain; the canary must stop.
    case mismatch(DiffClass)

    /// `match`, `lag`, or the difference's class, as logs, metrics and the API name it.
    public var name: String {
        switch self {
        case .match: "match"
        case .lag: "lag"
        case .mismatch(let kind): kind.rawValue
        }
    }

    /// Whether the canary must stop.
    public var isMismatch: Bool {
        if case .mismatch = self { return true }
        return false
    }

    /// The outcome a `name` names.
    public init?(name: String) {
        switch name {
        case "match": self = .match
        case "lag": self = .lag
        default:
            guard let kind = DiffClass(rawValue: name) else { return nil }
            self = .mismatch(kind)
        }
    }
}

extension ShadowOutcome: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let outcome = ShadowOutcome(name: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown shadow outcome \(name)"))
        }
        self = outcome
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// Classifies canary shadow reads. The router reads the new owner first and the old owner
/// second: before the switch every write lands on the old owner first and reaches the new one
/// only later, so read in that order the new owner can be behind but never ahead. A newer row on
/// the new owner is then never a race, always a real difference.
public enum ShadowRead {
    /// How the new owner's row (`target`) compares with the old owner's (`source`), read at wall
    /// time `nowMillis`; a new owner behind by a write no older than `lagAllowanceMillis` is lag.
    public static func classify(source: StoredRow?, target: StoredRow?, nowMillis: UInt64, lagAllowanceMillis: UInt64) -> ShadowOutcome {
        guard let kind = RowDiff.classify(source: source, target: target) else { return .match }
        switch kind {
        case .missingOnTarget, .olderOnTarget:
            guard let source else { return .mismatch(kind) }
            let written = HybridLogicalClock.millis(of: source.version)
            return written + lagAllowanceMillis >= nowMillis ? .lag : .mismatch(kind)
        case .extraOnTarget, .newerOnTarget, .corrupt:
            return .mismatch(kind)
        }
    }
}

/// Where the canary of reads stands: which step of the migration's read percentages, since when.
public struct CanaryProgress: Hashable, Sendable, Codable {
    /// Index into `MigrationSettings.canarySteps`.
    public var step: Int
    /// When the step began (milliseconds of wall time).
    public var since: UInt64
    /// The wall time up to which every router's shadow reads of this step were checked and
    /// found clean. A step passes on this evidence, not on its time alone: a mismatch found in
    /// the step's last moments must halt the canary, not arrive after the cutover began.
    public var checkedUpTo: UInt64?
    /// When the canary's first step began: shadow reads older than this belong to an earlier
    /// canary (optional so journals written before it existed still decode; `since` stands in).
    public var startedAt: UInt64?
}
