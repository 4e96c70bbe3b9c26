import Testing

@testable import ReshardCore

@Suite struct PlacementTests {
    @Test func evenRangesAreEqualWithinOneHash() throws {
        for count in 1...17 {
            let map = try EvenPlacement().shardMap(for: shards(count), generation: 1)
            #expect(map.assignments.count == count)
            let sizes = map.assignments.map { $0.range.last - $0.range.start }
            #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
        }
    }

    @Test func ringIsIndependentOfShardOrder() throws {
        let ring = RingPlacement(virtualNodes: 64)
        let forward = try ring.shardMap(for: shards(6), generation: 1)
        let backward = try ring.shardMap(for: shards(6).reversed(), generation: 1)
        #expect(forward == backward)
    }

    @Test func ringBalancesWithEnoughVirtualNodes() throws {
        let map = try RingPlacement(virtualNodes: 256).shardMap(for: shards(8), generation: 1)
        for shard in map.shards {
            // 256 points per shard keep each share within about ±20 % of 1/N.
            #expect(abs(map.fraction(ownedBy: shard) * 8 - 1) < 0.2)
        }
    }

    @Test(arguments: [1, 3, 4, 9, 16])
    func addingAShardMovesAboutOneOverNPlusOneOnlyTowardIt(existing: Int) throws {
        let ring = RingPlacement(virtualNodes: 256)
        let before = try ring.shardMap(for: shards(existing), generation: 1)
        let after = try ring.shardMap(for: shards(existing + 1), generation: 2)
        let newcomer = shard("s\(existing + 1)")
        let moves = before.diff(to: after)
        #expect(moves.allSatisfy { $0.target == newcomer })
        let ideal = 1.0 / Double(existing + 1)
        #expect(abs(before.movedFraction(to: after) / ideal - 1) < 0.2)
    }

    @Test(arguments: [2, 5, 8])
    func removingAShardMovesOnlyItsRanges(count: Int) throws {
        let ring = RingPlacement(virtualNodes: 128)
        let all = shards(count)
        let leaving = all[count / 2]
        let before = try ring.shardMap(for: all, generation: 1)
        let after = try ring.shardMap(for: all.filter { $0 != leaving }, generation: 2)
        let moves = before.diff(to: after)
        #expect(moves.allSatisfy { $0.source == leaving })
        #expect(abs(before.movedFraction(to: after) - before.fraction(ownedBy: leaving)) < 1e-12)
        #expect(!after.shards.contains(leaving))
    }

    @Test func rejectsDuplicateOrMissingShards() {
        #expect(throws: PlacementError.noShards) { try RingPlacement().assignments(for: []) }
        #expect(throws: PlacementError.duplicate(shard("a"))) { try EvenPlacement().assignments(for: [shard("a"), shard("a")]) }
    }

    @Test func shardNamesAreValidated() {
        #expect(ShardID("s1") != nil)
        #expect(ShardID("eu-west_2") != nil)
        for bad in ["", "S1", "1s", "s 1", "s;drop", "s\"", String(repeating: "a", count: 33), "é"] {
            #expect(ShardID(bad) == nil)
        }
    }
}
