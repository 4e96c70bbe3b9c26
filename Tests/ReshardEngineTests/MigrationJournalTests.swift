import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit
import Testing

/// The journal writer re-encodes only the members that changed: its journals must be what the
/// plain encoder writes, member for member, or a restart would resume a different migration.
@Suite struct MigrationJournalTests {
    /// Machines as migrations of every scenario left them (most members set: verification,
    /// canary, cutover, phase log, approvals, rollback…).
    static func endedMachines() async throws -> [MigrationStateMachine] {
        var machines: [MigrationStateMachine] = []
        for scenario in SimulationRun.Scenario.allCases {
            for seed: UInt64 in 1...2 {
                if let machine = try await SimulationRun(scenario: scenario, seed: seed).run().machine { machines.append(machine) }
            }
        }
        return machines
    }

    @Test func theMemberListIsEveryStoredPropertyOfTheMachine() throws {
        let machine = try Self.planned()
        let properties = Mirror(reflecting: machine).children.compactMap(\.label)
        #expect(MigrationStateMachine.journalMembers.map(\.key) == properties, "a property the writer does not know is lost")
    }

    /// The plan and the rest are the encoder's bytes: its text is the rest with the plan's
    /// member put back where sorted keys place it.
    @Test func aFreshWriterWritesTheEncodersBytes() async throws {
        var machines = try await Self.endedMachines()
        machines.append(try Self.planned())
        for machine in machines {
            var writer = MigrationJournal.Writer()
            let parts = try writer.encode(machine)
            let whole = try MigrationJournal.encode(machine)
            let member = "\"plan\":" + parts.plan + ","
            #expect(whole.contains(member) && whole.replacing(member, with: "", maxReplacements: 1) == parts.progress, "\(machine.phase)")
            #expect(!parts.progress.contains("\"plan\":{\"idealFraction\""), "the plan is kept apart")
            #expect(MigrationJournalText.joined(plan: parts.plan, progress: parts.progress).utf8.count == whole.utf8.count)
        }
    }

    @Test func aWriterThatRemembersStillWritesEachMachineExactly() async throws {
        let ended = try await Self.endedMachines()
        var planned = try Self.planned()
        var writer = MigrationJournal.Writer()
        // A migration round by round (one member moves at a time), then unrelated machines one
        // after another (many members move at once), then back.
        var sequence = [planned]
        planned.on(.start, now: 1)
        sequence.append(planned)
        planned.on(.prepared(positions: Dictionary(uniqueKeysWithValues: planned.plan.sources.map { ($0, 5) })), now: 2)
        sequence.append(planned)
        planned.on(.chunkCopied(task: 0, last: ScanCursor(hash: 7, pk: "k7"), rows: 3, done: false), now: 3)
        sequence.append(planned)
        planned.on(.pause, now: 4)
        sequence.append(planned)
        sequence += ended + ended.reversed() + sequence
        for machine in sequence {
            var expected = machine
            expected.dropPacing()
            let parts = try writer.encode(machine)
            #expect(
                try MigrationJournal.decode(MigrationJournalText.joined(plan: parts.plan, progress: parts.progress)) == expected,
                "\(machine.phase)")
        }
    }

    static func planned() throws -> MigrationStateMachine {
        let ids = (1...3).compactMap { ShardID("s\($0)") }
        let current = try RingPlacement(virtualNodes: 4).shardMap(for: Array(ids.prefix(2)), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(ids[2]), current: current, registered: Set(ids), virtualNodes: 4)
        var machine = MigrationStateMachine(
            id: "m1", plan: plan, tables: ["t"].compactMap(TableName.init), settings: MigrationSettings(gates: [.cuttingOver]))
        machine.estimatedRows = 12
        machine.createdAt = 1_700_000_000_000
        return machine
    }
}
