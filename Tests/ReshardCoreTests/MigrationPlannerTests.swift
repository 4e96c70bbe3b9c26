import Testing

@testable import ReshardCore

@Suite struct MigrationPlannerTests {
    let ring = RingPlacement(virtualNodes: 256)

    @Test func paintingOverridesOnlyThePaintedHashes() throws {
        var random = SeededRandom(seed: 4)
        let base = try ring.shardMap(for: shards(3), generation: 1)
        for _ in 0..<20 {
            let a = random.next()
            let b = random.next()
            let range = HashRange(start: min(a, b), last: max(a, b))
            let painted = try base.painting([RangeAssignment(range: range, shard: shard("x"))], generation: 2)
            #expect(painted.generation == 2)
            for hash in [range.start, range.last, random.next(), random.next(), 0, .max] {
                #expect(painted.owner(of: hash) == (range.contains(hash) ? shard("x") : base.owner(of: hash)))
            }
        }
    }

    @Test(arguments: [1, 3, 4, 8])
    func addShardMovesAboutOneOverNPlusOneOnlyToTheNewcomer(existing: Int) throws {
        let current = try ring.shardMap(for: shards(existing), generation: 7)
        let newcomer = shard("s\(existing + 1)")
        let plan = try MigrationPlanner.plan(.addShard(newcomer), current: current, registered: Set(shards(existing + 1)))
        #expect(plan.target.generation == 8)
        #expect(plan.moves.allSatisfy { $0.target == newcomer })
        #expect(abs(plan.movedFraction / plan.idealFraction - 1) < 0.2)
        // On a pure ring the result is exactly the ring of N+1 shards.
        #expect(plan.target == (try ring.shardMap(for: shards(existing + 1), generation: 8)))
    }

    @Test func addShardToAnUnevenMapStillMovesOnlyToTheNewcomer() throws {
        let current = try EvenPlacement().shardMap(for: shards(3), generation: 1)
        let plan = try MigrationPlanner.plan(.addShard(shard("s4")), current: current, registered: Set(shards(4)))
        #expect(plan.moves.allSatisfy { $0.target == shard("s4") })
        #expect(abs(plan.movedFraction - 0.25) < 0.05)
    }

    @Test func removeShardMovesOnlyItsRangesAndEmptiesIt() throws {
        let current = try ring.shardMap(for: shards(5), generation: 1)
        let leaving = shard("s3")
        let plan = try MigrationPlanner.plan(.removeShard(leaving), current: current, registered: Set(shards(5)))
        #expect(plan.moves.allSatisfy { $0.source == leaving })
        #expect(!plan.target.shards.contains(leaving))
        #expect(abs(plan.movedFraction - current.fraction(ownedBy: leaving)) < 1e-12)
    }

    @Test func moveRangeMovesExactlyThatRange() throws {
        let current = try EvenPlacement().shardMap(for: shards(4), generation: 1)
        let range = HashRange(start: 1 << 62, last: (1 << 63) + 5)
        let plan = try MigrationPlanner.plan(.moveRange(range, to: shard("s4")), current: current, registered: Set(shards(4)))
        #expect(plan.moves.map(\.source) == [shard("s2"), shard("s3")])
        #expect(plan.moves.allSatisfy { range.contains($0.range.start) && range.contains($0.range.last) })
        #expect(plan.move(containing: range.start)?.source == shard("s2"))
        #expect(plan.move(containing: 0) == nil)
    }

    @Test func rebalanceEvensOutSkewedRows() throws {
        // s1 holds a hot spot: half of all rows sit in 1 % of the space.
        var random = SeededRandom(seed: 12)
        let current = try EvenPlacement().shardMap(for: shards(4), generation: 1)
        var hashes = (0..<20_000).map { _ in random.next() }
        hashes += (0..<20_000).map { _ in random.next() % (UInt64.max / 100) }
        let plan = try MigrationPlanner.plan(.rebalance, current: current, registered: Set(shards(4)), rowHashes: hashes)
        var perShard: [ShardID: Int] = [:]
        for hash in hashes { perShard[plan.target.owner(of: hash), default: 0] += 1 }
        let mean = Double(hashes.count) / 4
        for count in perShard.values { #expect(abs(Double(count) / mean - 1) <= 0.05) }
        #expect(plan.target.shards == shards(4))
        // Rows moved stay close to the unavoidable minimum.
        let moved = hashes.filter { current.owner(of: $0) != plan.target.owner(of: $0) }.count
        #expect(Double(moved) / Double(hashes.count) <= plan.idealFraction * 1.6)
    }

    @Test func badRequestsAreTypedErrors() throws {
        let current = try ring.shardMap(for: shards(2), generation: 1)
        let registered = Set(shards(2))
        #expect(throws: PlanError.unknownShard(shard("s9"))) {
            try MigrationPlanner.plan(.addShard(shard("s9")), current: current, registered: registered)
        }
        #expect(throws: PlanError.shardOwnsRanges(shard("s1"))) {
            try MigrationPlanner.plan(.addShard(shard("s1")), current: current, registered: registered)
        }
        #expect(throws: PlanError.shardNotInMap(shard("s9"))) {
            try MigrationPlanner.plan(.removeShard(shard("s9")), current: current, registered: registered)
        }
        let single = try ring.shardMap(for: [shard("s1")], generation: 1)
        #expect(throws: PlanError.lastShard) {
            try MigrationPlanner.plan(.removeShard(shard("s1")), current: single, registered: registered)
        }
        #expect(throws: PlanError.noRows) { try MigrationPlanner.plan(.rebalance, current: current, registered: registered) }
        let owned = current.assignments[0]
        #expect(throws: PlanError.nothingToMove) {
            try MigrationPlanner.plan(.moveRange(owned.range, to: owned.shard), current: current, registered: registered)
        }
    }
}
