import Testing

@testable import ReshardCore

/// Gradual read serving (`serving_reads`, `write_new_read_old` with `read_steps`): after the
/// switch and a clean verification, the new owners serve a growing share of reads alone, step by
/// step; a router that sends its reads back fails the migration with reads on the old path.
@Suite struct ReadStepsTests {
    func settings(_ steps: [Double]?, gates: Set<MigrationPhase> = []) -> MigrationSettings {
        var settings = MigrationSettings(bakeMillis: 100, gates: gates, strategy: .writeNewReadOld)
        settings.readSteps = steps
        settings.readStepMillis = 50
        settings.maxReadErrorRate = 0.05
        settings.maxReadLatencyFactor = 3
        return settings
    }

    /// A `write_new_read_old` migration switched, copied and verified at `t`.
    func verified(_ settings: MigrationSettings) throws -> (MigrationStateMachine, UInt64) {
        var m = try MigrationStateMachineTests().machine(settings: settings)
        m.on(.start, now: 0)
        m.on(.prepared(positions: Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, 5) })), now: 10)
        for source in m.plan.sources { m.on(.tailed(.forward, shard: source, position: 6, backlog: 0, lagMillis: 0), now: 11) }
        m.finish(round: [.routesShown(m.routeDirective)], now: 20)
        let t = 20 + MigrationPacing.routerFollowMillis
        m.on(.tick, now: t)
        #expect(m.phase == .cuttingOver)
        m.on(.writesHeld, now: t)
        var positions = Dictionary(uniqueKeysWithValues: m.plan.sources.map { ($0, UInt64(6)) })
        for target in m.plan.targets { positions[target] = 30 }
        m.on(.fenced(positions: positions), now: t)
        m.on(.published, now: t + 1)
        m.on(.writesReleased, now: t + 2)
        for index in m.copies.indices { m.on(.chunkCopied(task: index, last: nil, rows: 1, done: true), now: t + 4) }
        #expect(m.phase == .verifying)
        m.on(.verified(VerificationReport(at: t + 5)), now: t + 5)
        return (m, t + 5)
    }

    @Test func theNewOwnersServeEachStepsShareThenReadsMoveForGood() throws {
        #expect(MigrationStrategy.writeNewReadOld.servesReadsGradually)
        #expect(MigrationStrategy.allCases.filter(\.servesReadsGradually) == [.writeNewReadOld])
        var (m, t) = try verified(settings([10, 100]))
        #expect(m.phase == .servingReads)
        for (index, percent) in [10.0, 100].enumerated() {
            let start = t + UInt64(index) * 50
            let directive = try #require(m.routeDirective)
            #expect(directive.routes == .newestReads, "the rest of the reads still take the newer of both owners")
            #expect(directive.serve == RouteDirective.ReadServe(percent: percent, maxErrorRate: 0.05, maxLatencyFactor: 3))
            #expect(directive.epoch == m.verifications && directive.shadowPercent == 0)
            #expect(m.readServePercent == percent && m.canaryReadPercent == nil)
            // Reverse replication keeps the old owners current; the runner sleeps until the step ends.
            let work = m.work(now: start + 10)
            #expect(work.contains(.tail(.reverse, shard: m.plan.targets[0], after: 30, through: nil)))
            #expect(!work.contains { if case .tail(.forward, _, _, _) = $0 { true } else { false } })
            #expect(work.last == .waitUntil(start + 50))
            m.on(.tick, now: start + 49)
            #expect(m.readServePercent == percent, "a step lasts its whole time")
            m.on(.tick, now: start + 50)
            #expect(m.work(now: start + 50).last == .checkShadowReads(since: t, upTo: start + 50))
            m.on(.shadowReadsChecked(upTo: start + 50), now: start + 50)
        }
        #expect(m.phase == .baking && m.routeDirective == nil, "every step passed: reads go to the new owners alone")
        #expect(m.bakeUntil == t + 100 + 100, "the bake is timed from the last step")
        #expect(m.phaseLog.map(\.phase).suffix(3) == [.verifying, .servingReads, .baking])
    }

    @Test func withoutReadStepsReadsMoveAtOnceAfterVerification() throws {
        for steps in [nil, [Double]()] {
            let (m, _) = try verified(settings(steps))
            #expect(m.phase == .baking && m.routeDirective == nil)
        }
    }

    @Test func readsSentBackFailTheMigrationWithReadsOnTheOldPathAndResumeProvesAgain() throws {
        var (m, t) = try verified(settings([50, 100]))
        let epoch = try #require(m.routeDirective?.epoch)
        m.on(.readsSentBack("6 of 100 served reads failed (router r2)"), now: t + 10)
        #expect(m.phase == .failed && m.failure?.contains("6 of 100 served reads failed") == true)
        let failed = try #require(m.routeDirective)
        #expect(failed.serve == nil && failed.routes == .newestReads, "back to the newer of both owners, which needs no proof")
        #expect(m.on(.resume, now: t + 20) == .accepted)
        #expect(m.phase == .verifying, "a failed proof is proven again")
        m.on(.verified(VerificationReport(at: t + 30)), now: t + 30)
        #expect(m.phase == .servingReads && m.readServePercent == 50)
        #expect((m.routeDirective?.epoch ?? 0) > epoch, "a new epoch lets the router that sent reads back serve again")

        // A report that outlives the phase changes nothing.
        var baking = m
        for end in [t + 80, t + 130] {
            baking.on(.tick, now: end)
            baking.on(.shadowReadsChecked(upTo: end), now: end)
        }
        #expect(baking.phase == .baking)
        baking.on(.readsSentBack("late"), now: t + 140)
        #expect(baking.phase == .baking)
    }

    @Test func servingReadsCanBeRolledBackAndGated() throws {
        var (m, t) = try verified(settings([10, 100]))
        #expect(m.on(.rollback, now: t + 1) == .accepted)
        #expect(m.phase == .rollingBack && m.routeDirective?.serve == nil && m.routeDirective?.routes == .newestReads)

        var (gated, _) = try verified(settings([10, 100], gates: [.servingReads]))
        #expect(gated.phase == .verifying && gated.awaitingApproval == .servingReads)
        #expect(MigrationPhase(gate: "before_serving_reads") == .servingReads)
        #expect(gated.on(.approve(nil), now: t + 2) == .accepted)
        gated.on(.tick, now: t + 3)
        #expect(gated.phase == .servingReads)
    }

    @Test func readOptionsOutsideTheirBoundsAreRefusedByName() {
        func violation(_ change: (inout MigrationSettings) -> Void) -> String? {
            var s = settings([10, 100])
            change(&s)
            return s.violation()?.option
        }
        #expect(violation { _ in } == nil)
        #expect(violation { $0.strategy = .cdcBackfill } == "read_steps", "only write_new_read_old moves its reads step by step")
        #expect(violation { $0.strategy = .routingFirst } == "read_steps")
        #expect(
            violation {
                $0.strategy = .cdcBackfill; $0.readSteps = []
            } == nil)
        for steps: [Double] in [[50, 10], [0, 100], [10, 10], [100.5], [-1], [.nan], Array(repeating: 1, count: 101)] {
            #expect(violation { $0.readSteps = steps } == "read_steps", "\(steps.prefix(3))")
        }
        for rate in [-0.1, 1.01, .nan, .infinity] { #expect(violation { $0.maxReadErrorRate = rate } == "max_read_error_rate") }
        for factor in [1.0, 0, 100.5, .nan, -2] { #expect(violation { $0.maxReadLatencyFactor = factor } == "max_read_latency_factor") }
        #expect(violation { $0.readStepMillis = 86_400_001 } == "read_step_ms")
        #expect(
            violation {
                $0.maxReadErrorRate = 0; $0.maxReadLatencyFactor = 100; $0.readStepMillis = 0
            } == nil)
    }
}
