import Foundation
import ReshardCore

/// The migration journal's text form: the machine as JSON with sorted keys, without its pacing
/// (figures of this process's rounds, which a restart starts afresh).
public enum MigrationJournal {
    /// The machine as JSON.
    public static func encode(_ machine: MigrationStateMachine) throws -> String {
        String(decoding: try encoder().encode(durable(machine)), as: UTF8.self)
    }

    /// A machine back from JSON.
    public static func decode(_ text: String) throws -> MigrationStateMachine {
        try JSONDecoder().decode(MigrationStateMachine.self, from: Data(text.utf8))
    }

    private static func durable(_ machine: MigrationStateMachine) -> MigrationStateMachine {
        var durable = machine
        durable.dropPacing()
        return durable
    }

    private static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// A journal in the two texts the metadata store keeps (`MetadataStore.saveMigration`).
    public struct Parts: Sendable, Equatable {
        /// The plan member's JSON: both shard maps, unchanged from admission to the end.
        public let plan: String
        /// Every other member, as a JSON object with sorted keys.
        public let progress: String
    }

    /// Writes the journals of one migration, round after round, as the plan and the rest of
    /// what `encode` writes (the same members, keys and order), re-encoding only the members
    /// that changed since the last one: a round moves a few cursors, while the plan, the
    /// settings and the phase log stay as they were, and the encoder's cost is in the bulk.
    public struct Writer {
        private var last: MigrationStateMachine?
        /// Each member's JSON in the last journal, in `journalMembers` order (nil: left out).
        private var fragments: [String?] = []
        private let encoder = MigrationJournal.encoder()
        /// `journalMembers`, sorted by key as the encoder sorts them.
        private static let members = MigrationStateMachine.journalMembers.sorted {
            $0.key.utf8.lexicographicallyPrecedes($1.key.utf8)
        }

        /// A writer with nothing remembered.
        public init() {}

        /// The journal of `machine`.
        public mutating func encode(_ machine: MigrationStateMachine) throws -> Parts {
            let durable = MigrationJournal.durable(machine)
            var fragments: [String?] = []
            fragments.reserveCapacity(Self.members.count)
            for (index, member) in Self.members.enumerated() {
                if let last, member.same(last, durable) {
                    fragments.append(self.fragments[index])
                } else {
                    fragments.append(try member.value(durable).map { String(decoding: try encoder.encode($0), as: UTF8.self) })
                }
            }
            last = durable
            self.fragments = fragments
            var plan = ""
            var fields: [String] = []
            for (member, fragment) in zip(Self.members, fragments) {
                guard let fragment else { continue }
                if member.key == MigrationStateMachine.planMember {
                    plan = fragment
                } else {
                    fields.append("\"\(member.key)\":" + fragment)
                }
            }
            return Parts(plan: plan, progress: "{" + fields.joined(separator: ",") + "}")
        }
    }
}
