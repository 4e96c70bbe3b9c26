import Synchronization

/// What clients were told about each key, to check afterwards, by reading every key back, that
/// no acknowledged write was lost, no acknowledged delete came back and no read is stale. Any
/// number of clients record into one ledger at once.
public final class Ledger: Sendable {
    /// How the acknowledgements of one key combine into what the key must hold.
    public enum Order: Sendable {
        /// The highest version wins, as on the shards: for keys that several clients write at once.
        case highestVersion
        /// The latest acknowledgement wins: for keys each written by one client, one operation at
        /// a time, through routers whose clocks may differ. Once a delete's tombstone is purged, the
        /// next write may take a lower version than the delete's, and is still what the key holds.
        case lastAcknowledged
    }

    /// A write whose answer never came, so that it may or may not have happened.
    public enum Operation: Sendable, Equatable {
        /// A put (insert or update).
        case put
        /// A delete.
        case delete
    }

    /// What one key's clients were told.
    public struct Entry: Sendable, Equatable {
        /// The acknowledged version.
        public var version: UInt64
        /// Whether the acknowledged operation was a delete.
        public var deleted: Bool
        /// The bytes acknowledged with the version, when the test records them.
        public var body: [UInt8]?
        /// Operations after the acknowledged one whose outcome is unknown.
        public var uncertain: [Operation] = []
    }

    /// A key as read back.
    public struct Read: Sendable, Equatable {
        /// The row's version.
        public let version: UInt64
        /// The row's bytes, when the reader has them.
        public let body: [UInt8]?

        /// A row read at `version`, with its bytes if `body` is given.
        public init(version: UInt64, body: [UInt8]? = nil) {
            self.version = version
            self.body = body
        }
    }

    private let order: Order
    private let keys = Mutex<[String: Entry]>([:])
    private let problems = Mutex<[String]>([])
    private let tally = Mutex<[String: Int]>([:])

    /// An empty ledger whose acknowledgements combine by `order`.
    public init(order: Order = .highestVersion) {
        self.order = order
    }

    /// Records that writing `key` was acknowledged at `version` (a delete when `deleted`), with
    /// the bytes written when the test will compare bytes; counts it under "acknowledged puts"
    /// or "acknowledged deletes".
    public func acknowledge(_ key: String, version: UInt64, deleted: Bool, body: [UInt8]? = nil) {
        let order = order
        keys.withLock { keys in
            switch order {
            case .highestVersion:
                guard (keys[key]?.version ?? 0) < version else { return }
            case .lastAcknowledged: break
            }
            keys[key] = Entry(version: version, deleted: deleted, body: deleted ? nil : body)
        }
        count(deleted ? "acknowledged deletes" : "acknowledged puts")
    }

    /// Records that an operation on `key` got no answer: it may have happened. A key never
    /// acknowledged is not checked, so its unknown outcomes are not kept.
    public func uncertain(_ key: String, _ operation: Operation) {
        keys.withLock { $0[key]?.uncertain.append(operation) }
        count("unknown outcomes")
    }

    /// Records something a client saw that contradicts what it was told.
    public func violation(_ text: String) { problems.withLock { $0.append(text) } }

    /// Adds one to the counter `what`.
    public func count(_ what: String) { tally.withLock { $0[what, default: 0] += 1 } }

    /// Every violation recorded so far.
    public var violations: [String] { problems.withLock { $0 } }
    /// Every counter.
    public var counts: [String: Int] { tally.withLock { $0 } }
    /// What each key's clients were told.
    public var entries: [String: Entry] { keys.withLock { $0 } }

    /// How reading `key` (nil: not found) contradicts what its clients were told, or nil when it
    /// does not (also for a key never acknowledged).
    public func contradiction(_ key: String, read: Read?) -> Contradiction? {
        guard let entry = keys.withLock({ $0[key] }) else { return nil }
        return Contradiction.of(key, entry: entry, read: read)
    }

    /// Reads every acknowledged key back through `read` (nil: not found), one after another,
    /// and files each contradiction by kind.
    public func check(read: (String) async throws -> Read?) async throws -> Report {
        var report = Report()
        for (key, entry) in entries.sorted(by: { $0.key < $1.key }) {
            report.checked += 1
            if let found = Contradiction.of(key, entry: entry, read: try await read(key)) { report.found.append(found) }
        }
        return report
    }
}

extension Ledger {
    /// A key whose read contradicts what its clients were told.
    public struct Contradiction: Sendable, Equatable, CustomStringConvertible {
        /// How the read contradicts the acknowledgement.
        public enum Kind: String, Sendable, CaseIterable {
            /// Not found, though a write was acknowledged and no delete may have followed it.
            case lost
            /// Found, though a delete was acknowledged and no write may have followed it.
            case resurrected
            /// Older than the acknowledged version.
            case stale
            /// A version newer than any acknowledged, with no write in doubt to explain it, or the
            /// acknowledged version with other bytes.
            case unexplained
        }

        /// The kind.
        public let kind: Kind
        /// The key.
        public let key: String
        /// What was read against what was acknowledged.
        public let description: String

        static func of(_ key: String, entry: Entry, read: Read?) -> Contradiction? {
            let told = "acknowledged v\(entry.version) deleted=\(entry.deleted), unknown outcomes after it: \(entry.uncertain)"
            guard let read else {
                if entry.deleted || entry.uncertain.contains(.delete) { return nil }
                return Contradiction(kind: .lost, key: key, description: "\(key) not found; \(told)")
            }
            if read.version > entry.version && entry.uncertain.contains(.put) { return nil }
            let kind: Kind
            if entry.deleted {
                kind = .resurrected
            } else if read.version < entry.version {
                kind = .stale
            } else if read.version > entry.version {
                kind = .unexplained
            } else if let expected = entry.body, let body = read.body, body != expected {
                return Contradiction(
                    kind: .unexplained, key: key,
                    description: "\(key): read v\(read.version) as \(String(decoding: body, as: UTF8.self)), "
                        + "acknowledged as \(String(decoding: expected, as: UTF8.self))")
            } else {
                return nil
            }
            return Contradiction(kind: kind, key: key, description: "\(key): read v\(read.version); \(told)")
        }
    }

    /// What reading every key of a ledger back found.
    public struct Report: Sendable, CustomStringConvertible {
        /// Keys read back.
        public internal(set) var checked = 0
        /// Every contradiction, in key order.
        public internal(set) var found: [Contradiction] = []

        /// Whether every key holds what its clients were told.
        public var isClean: Bool { found.isEmpty }

        /// How many contradictions of each kind.
        public var counts: [Contradiction.Kind: Int] { Dictionary(grouping: found, by: \.kind).mapValues(\.count) }

        /// The counts by kind and the first few contradictions.
        public var description: String {
            let kinds = Contradiction.Kind.allCases.map { "\(counts[$0, default: 0]) \($0.rawValue)" }.joined(separator: ", ")
            return "\(found.count) of \(checked) keys contradict their answers (\(kinds)): \(found.prefix(5).map(\.description))"
        }
    }
}
