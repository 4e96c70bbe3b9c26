extension API {
    /// `POST /v1/migrations/{id}/settings`: what to change in a migration that has not ended.
    ///
    /// Decoding is strict, like `MigrationOptions`: a member that is not one of these two, a
    /// `null`, and a value of the wrong type or size throw an `OptionError` naming it, so a typo
    /// never reads as "nothing to change". Bounds are the server's rule (`MigrationSettings`).
    public struct ChangeMigrationSettings: Codable, Sendable, Hashable {
        /// A new ceiling on copied rows per second.
        public var maxRowsPerSecond: Int?
        /// A new bake length, milliseconds; a bake under way ends this long after it began.
        public var bakeMs: UInt64?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxRowsPerSecond = "max_rows_per_second"
            case bakeMs = "bake_ms"
        }

        /// Every member's wire name.
        public static let names = CodingKeys.allCases.map(\.rawValue)

        /// A change of either or both.
        public init(maxRowsPerSecond: Int? = nil, bakeMs: UInt64? = nil) {
            self.maxRowsPerSecond = maxRowsPerSecond
            self.bakeMs = bakeMs
        }

        /// Reads the change, refusing an unknown member (the first in name order), a `null` and
        /// a value of the wrong type or size with an `OptionError` naming it.
        public init(from decoder: any Decoder) throws {
            if let unknown = try decoder.firstUnknownMember(of: CodingKeys.self) {
                throw OptionError.unknown(unknown)
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func member<T: Decodable>(_ key: CodingKeys) throws -> T? {
                guard container.contains(key) else { return nil }
                do {
                    return try container.decode(T.self, forKey: key)
                } catch {
                    throw OptionError.malformed(key.rawValue)
                }
            }
            maxRowsPerSecond = try member(.maxRowsPerSecond)
            bakeMs = try member(.bakeMs)
        }

        /// Writes the members given, leaving out the others.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(maxRowsPerSecond, forKey: .maxRowsPerSecond)
            try container.encodeIfPresent(bakeMs, forKey: .bakeMs)
        }
    }

    /// The answer to `POST /v1/migrations/{id}/settings`: the settings in force once the change
    /// was applied (and journaled).
    public struct MigrationSettingsChanged: Codable, Sendable, Hashable {
        /// The migration's id.
        public var id: String
        /// Its phase right after the change.
        public var phase: String
        /// The ceiling on copied rows per second in force; nil for none.
        public var maxRowsPerSecond: Int?
        /// The bake length in force, milliseconds.
        public var bakeMs: UInt64
        /// When the bake ends, milliseconds of wall time, once it began.
        public var bakeUntilMs: UInt64?

        enum CodingKeys: String, CodingKey {
            case id, phase
            case maxRowsPerSecond = "max_rows_per_second"
            case bakeMs = "bake_ms"
            case bakeUntilMs = "bake_until_ms"
        }

        /// The settings in force.
        public init(id: String, phase: String, maxRowsPerSecond: Int?, bakeMs: UInt64, bakeUntilMs: UInt64?) {
            self.id = id
            self.phase = phase
            self.maxRowsPerSecond = maxRowsPerSecond
            self.bakeMs = bakeMs
            self.bakeUntilMs = bakeUntilMs
        }

        /// Writes every member, `null` for no ceiling and a bake not begun.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(phase, forKey: .phase)
            try container.encodeNullable(maxRowsPerSecond, forKey: .maxRowsPerSecond)
            try container.encode(bakeMs, forKey: .bakeMs)
            try container.encodeNullable(bakeUntilMs, forKey: .bakeUntilMs)
        }
    }
}
