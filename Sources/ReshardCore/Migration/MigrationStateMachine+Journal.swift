/// When the migration is journaled, and what a journal is made of. The runner saves when
/// `journalDue` says so; `journalMembers` lets a journal writer re-encode only what changed.
extension MigrationStateMachine {
    /// Whether the machine should be journaled at wall time `now`, given the last journal's mark.
    /// None is made while writes are held: every millisecond is client pause, each cutover step
    /// is idempotent, the hold dies with the process, and a restart redoes the cutover from the
    /// hold after learning from the published map whether it switched. A failure and an
    /// operator's `command` are always saved. Every round that moved progress is saved, so a
    /// restart redoes at most one round of chunks (DESIGN invariant 6). What a restart learns
    /// again by itself (fresher lag figures, a stale backlog read afresh, how far shadow reads
    /// were checked, what the routers' directive shows, that an ended migration's streams are
    /// closed) is saved with the next change, and at most every
    /// `MigrationPacing.relearnedJournalMillis` on its own, which only keeps other routers'
    /// view of the status fresh.
    public func journalDue(since last: JournalMark?, now: UInt64, command: Bool = false) -> Bool {
        guard command || !holding || phase == .failed else { return false }
        let durable = durableProjection
        guard let last else { return true }
        guard durable != last.machine else { return false }
        if command || now >= last.at.adding(saturating: MigrationPacing.relearnedJournalMillis) { return true }
        return durable.withoutRelearned != last.machine.withoutRelearned
    }

    /// What a journal saved at wall time `now` records, for the next `journalDue`.
    public func journalMark(now: UInt64) -> JournalMark { JournalMark(machine: durableProjection, at: now) }

    /// The machine without what a restart learns again: the canary's directive is shown again
    /// (`.restarted` marks it stale), shadow reads are checked again from the step's start, a
    /// backlog is read again before catching up may end, and a start sweeps the change streams
    /// of ended migrations.
    var withoutRelearned: MigrationStateMachine {
        var copy = self
        for key in copy.forward.keys { copy.forward[key]?.backlog = 0 }
        copy.canary?.checkedUpTo = nil
        copy.routesShown = nil
        copy.routesStale = nil
        copy.routesShownAt = nil
        // Only an ended migration's: a failed one that closed its streams must start over.
        if copy.phase.isTerminal { copy.streamsReleased = nil }
        return copy
    }

    /// The plan's coding key: the one member a journal keeps apart, since it holds both maps
    /// and never changes.
    public static let planMember = "plan"

    /// Every stored property, as the synthesized `Codable` conformance encodes it (under its
    /// name; an absent optional is left out). A test checks the list against the type's
    /// properties, so a property added to the machine and not here fails it.
    public static let journalMembers: [JournalMember] = [
        JournalMember("id") { $0.id },
        JournalMember(planMember) { $0.plan },
        JournalMember("tables") { $0.tables },
        JournalMember("settings") { $0.settings },
        JournalMember("phase") { $0.phase },
        JournalMember("interrupted") { $0.interrupted },
        JournalMember("failure") { $0.failure },
        JournalMember("copies") { $0.copies },
        JournalMember("forward") { $0.forward },
        JournalMember("streamsReleased") { $0.streamsReleased },
        JournalMember("reverse") { $0.reverse },
        JournalMember("replayed") { $0.replayed },
        JournalMember("cutover") { $0.cutover },
        JournalMember("cutoverAttempts") { $0.cutoverAttempts },
        JournalMember("holding") { $0.holding },
        JournalMember("sourcesFenced") { $0.sourcesFenced },
        JournalMember("switched") { $0.switched },
        JournalMember("bakeUntil") { $0.bakeUntil },
        JournalMember("deletions") { $0.deletions },
        JournalMember("purges") { $0.purges },
        JournalMember("tombstoneHorizon") { $0.tombstoneHorizon },
        JournalMember("rollback") { $0.rollback },
        JournalMember("verification") { $0.verification },
        JournalMember("verifications") { $0.verifications },
        JournalMember("verified") { $0.verified },
        JournalMember("canary") { $0.canary },
        JournalMember("canaryPassed") { $0.canaryPassed },
        JournalMember("awaitingApproval") { $0.awaitingApproval },
        JournalMember("awaitingSince") { $0.awaitingSince },
        JournalMember("approved") { $0.approved },
        JournalMember("pausesMillis") { $0.pausesMillis },
        JournalMember("phaseLog") { $0.phaseLog },
        JournalMember("routesShown") { $0.routesShown },
        JournalMember("routesStale") { $0.routesStale },
        JournalMember("routesShownAt") { $0.routesShownAt },
        JournalMember("pacing") { $0.pacing },
        JournalMember("estimatedRows") { $0.estimatedRows },
        JournalMember("estimatedBytes") { $0.estimatedBytes },
        JournalMember("createdAt") { $0.createdAt },
    ]
}

/// What the last journal saved, and when: `journalDue` compares the machine with it.
public struct JournalMark: Sendable, Equatable {
    /// The durable projection saved.
    public let machine: MigrationStateMachine
    /// Wall time of the save, milliseconds.
    public let at: UInt64
}

/// One stored property of the machine: its coding key, whether two machines differ in it, and
/// its value to encode (nil when it is an absent optional).
public struct JournalMember: Sendable {
    /// The coding key.
    public let key: String
    /// Whether two machines hold the same value.
    public let same: @Sendable (MigrationStateMachine, MigrationStateMachine) -> Bool
    /// The value, nil when the encoder leaves the key out.
    public let value: @Sendable (MigrationStateMachine) -> (any Encodable)?

    init<Value: Encodable & Equatable>(_ key: String, _ read: @escaping @Sendable (MigrationStateMachine) -> Value) {
        self.key = key
        same = { read($0) == read($1) }
        value = { read($0) }
    }

    init<Value: Encodable & Equatable>(_ key: String, _ read: @escaping @Sendable (MigrationStateMachine) -> Value?) {
        self.key = key
        same = { read($0) == read($1) }
        value = { read($0) }
    }
}
