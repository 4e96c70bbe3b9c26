import Testing

@testable import ReshardCore

/// A strategy is a table of phases: its order, its router modes, and the phases a machine of
/// each strategy walks.
@Suite struct MigrationStrategyTests {
    @Test func cdcBackfillIsTheDefaultAndItsTableIsDesignsPhaseOrder() {
        #expect(MigrationSettings().strategyInForce == .cdcBackfill)
        let phases = MigrationStrategy.cdcBackfill.steps.map(\.phase)
        #expect(phases == [.preparing, .copying, .catchingUp, .verifying, .canary, .cuttingOver, .baking, .cleaningUp])
        #expect(MigrationStrategy.cdcBackfill.step(.canary)?.routes.reads == .ownerWithShadow)
        #expect(MigrationStrategy.cdcBackfill.step(.cuttingOver)?.routes.writes == .held)
        for step in MigrationStrategy.cdcBackfill.steps {
            #expect(!step.does.isEmpty && !step.until.isEmpty, "\(step.phase) says what it does and when it ends")
            #expect(!step.phase.isTerminal && ![.paused, .failed, .rollingBack, .planned].contains(step.phase))
        }
    }

    @Test func theNextPhaseFollowsTheTableAndSkipsWhatIsLeftOut() {
        let cdc = MigrationStrategy.cdcBackfill
        #expect(cdc.phase(after: .verifying) == .canary)
        #expect(cdc.phase(after: .verifying, skip: [.canary]) == .cuttingOver)
        #expect(cdc.phase(after: .cleaningUp) == nil, "after the last phase the migration is done")
        #expect(cdc.phase(after: .paused) == nil, "a phase outside the table has no successor")
    }

    @Test func onlyStrategiesWithATableAreAvailable() {
        for strategy in MigrationStrategy.allCases {
            #expect(strategy.isAvailable == !strategy.steps.isEmpty)
        }
        #expect(MigrationStrategy.cdcBackfill.isAvailable)
        #expect(MigrationStrategy(rawValue: "dual_write") == .dualWrite)
    }
}
