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
        // Removing a shard nobody registered names it unknown; a registered one that owns
        // nothing has nothing to remove.
        #expect(throws: PlanError.unknownShard(shard("s9"))) {
            try MigrationPlanner.plan(.removeShard(shard("s9")), current: current, registered: registered)
        }
        #expect(throws: PlanError.shardNotInMap(shard("s3"))) {
            try MigrationPlanner.plan(.removeShard(shard("s3")), current: current, registered: registered.union([shard("s3")]))
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

@Suite struct RebalancerTests {
    private func shard(_ name: String) -> ShardID { ShardID(name)! }
    private func shards(_ count: Int) -> [ShardID] { (1...count).map { shard("s\($0)") } }

    /// Rows per shard and rows that changed owner.
    private func outcome(_ plan: MigrationPlan, _ hashes: [UInt64]) -> (counts: [ShardID: Int], moved: Int) {
        var counts: [ShardID: Int] = [:]
        var moved = 0
        for hash in hashes {
            counts[plan.target.owner(of: hash), default: 0] += 1
            if plan.source.owner(of: hash) != plan.target.owner(of: hash) { moved += 1 }
        }
        return (counts, moved)
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func movesExactlyTheExcessAndEvensEveryShard(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let count = 2 + Int(random.next() % 9)
        let current = try RingPlacement(virtualNodes: 1 + Int(random.next() % 64)).shardMap(for: shards(count), generation: 1)
        // Skewed rows: a hot slice of the space on top of a uniform spread.
        let hot = random.next()
        var hashes = (0..<(1_000 + Int(random.next() % 5_000))).map { _ in random.next() }
        hashes += (0..<Int(random.next() % 3_000)).map { _ in hot &+ random.next() % (UInt64.max / 200) }
        let plan = try MigrationPlanner.plan(.rebalance, current: current, registered: Set(shards(count)), rowHashes: hashes)
        let (counts, moved) = outcome(plan, hashes)
        let mean = hashes.count / count
        for id in shards(count) { #expect((mean...mean + 1).contains(counts[id] ?? 0), "seed \(seed): \(id) holds \(counts[id] ?? 0)") }
        #expect(moved == Int((plan.idealFraction * Double(hashes.count)).rounded()))
        #expect(plan.target.generation == current.generation + 1)
    }

    @Test func addingOntoANewShardMovesItsShareAndNoMore() throws {
        var random = SeededRandom(seed: 99)
        let hashes = (0..<40_000).map { _ in random.next() }
        for count in [4, 8, 16] {
            let current = try RingPlacement().shardMap(for: shards(count), generation: 1)
            let before = outcome(
                try MigrationPlanner.plan(.addShard(shard("s\(count + 1)")), current: current, registered: Set(shards(count + 1))), hashes)
            let plan = try MigrationPlanner.balancedAdd([shard("s\(count + 1)")], current: current, rowHashes: hashes)
            let (counts, moved) = outcome(plan, hashes)
            let share = hashes.count / (count + 1)
            #expect((share...share + 1).contains(moved))
            #expect(plan.moves.allSatisfy { $0.target == shard("s\(count + 1)") })
            #expect((share...share + 1).contains(counts[shard("s\(count + 1)")] ?? 0))
            // The largest old shard shrinks at least to where the ring's own add leaves it.
            let largest = shards(count).map { counts[$0] ?? 0 }.max() ?? 0
            #expect(largest <= shards(count).map { before.counts[$0] ?? 0 }.max() ?? 0)
        }
    }

    @Test func rowsSharingAHashStayTogether() throws {
        // One key's 500 co-located rows sit at one hash; every owner keeps them whole.
        var random = SeededRandom(seed: 5)
        var hashes = (0..<2_000).map { _ in random.next() }
        let shared = hashes[17]
        hashes += Array(repeating: shared, count: 500)
        let current = try EvenPlacement().shardMap(for: shards(3), generation: 1)
        let plan = try MigrationPlanner.plan(.rebalance, current: current, registered: Set(shards(3)), rowHashes: hashes)
        let (counts, _) = outcome(plan, hashes)
        #expect(counts.values.reduce(0, +) == hashes.count)
        // Shares may be off by at most the indivisible group.
        for value in counts.values { #expect(abs(value - hashes.count / 3) <= 501) }
    }

    @Test func aBalancedAddRefusesAShardThatOwnsRanges() throws {
        let current = try RingPlacement().shardMap(for: shards(3), generation: 1)
        #expect(throws: PlanError.self) { try MigrationPlanner.balancedAdd([shard("s2")], current: current, rowHashes: [1, 2, 3]) }
    }
}
