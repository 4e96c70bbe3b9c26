import Foundation
import Testing

@testable import ReshardCore

func shard(_ name: String) -> ShardID {
    guard let id = ShardID(name) else { fatalError("bad test shard name \(name)") }
    return id
}

func shards(_ count: Int) -> [ShardID] { (1...count).map { shard("s\($0)") } }

@Suite struct ShardMapTests {
    @Test func rejectsMapsThatDoNotTileTheSpace() {
        let a = shard("a")
        #expect(throws: ShardMapError.empty) { try ShardMap(generation: 1, assignments: []) }
        #expect(throws: ShardMapError.notCoveringStart(5)) {
            try ShardMap(generation: 1, assignments: [RangeAssignment(range: HashRange(start: 5, last: .max), shard: a)])
        }
        #expect(throws: ShardMapError.notCoveringEnd(10)) {
            try ShardMap(generation: 1, assignments: [RangeAssignment(range: HashRange(start: 0, last: 10), shard: a)])
        }
        #expect(throws: ShardMapError.gap(at: 11)) {
            try ShardMap(
                generation: 1,
                assignments: [
                    RangeAssignment(range: HashRange(start: 0, last: 10), shard: a),
                    RangeAssignment(range: HashRange(start: 12, last: .max), shard: a),
                ])
        }
        #expect(throws: ShardMapError.overlap(at: 10)) {
            try ShardMap(
                generation: 1,
                assignments: [
                    RangeAssignment(range: HashRange(start: 0, last: 10), shard: a),
                    RangeAssignment(range: HashRange(start: 10, last: .max), shard: a),
                ])
        }
    }

    @Test func mergesAdjacentRangesOfOneOwner() throws {
        let map = try ShardMap(
            generation: 3,
            assignments: [
                RangeAssignment(range: HashRange(start: 100, last: .max), shard: shard("a")),
                RangeAssignment(range: HashRange(start: 0, last: 99), shard: shard("a")),
            ])
        #expect(map.assignments == [RangeAssignment(range: .full, shard: shard("a"))])
    }

    @Test func lookupAgreesWithLinearScan() throws {
        var random = SeededRandom(seed: 42)
        for shardCount in [1, 2, 3, 7, 16] {
            let map = try RingPlacement(virtualNodes: 32).shardMap(for: shards(shardCount), generation: 1)
            let probes: [UInt64] = [0, 1, UInt64.max, UInt64.max - 1] + map.assignments.flatMap { [$0.range.start, $0.range.last] }
            for hash in probes + (0..<2_000).map({ _ in random.next() }) {
                let linear = map.assignments.first { $0.range.contains(hash) }
                #expect(map.owner(of: hash) == linear?.shard)
            }
        }
    }

    @Test func everyKeyHasExactlyOneOwner() throws {
        var random = SeededRandom(seed: 1)
        let map = try RingPlacement().shardMap(for: shards(5), generation: 1)
        for _ in 0..<5_000 {
            let hash = random.next()
            #expect(map.assignments.filter { $0.range.contains(hash) }.count == 1)
        }
        let total = map.shards.reduce(0.0) { $0 + map.fraction(ownedBy: $1) }
        #expect(abs(total - 1) < 1e-9)
    }

    @Test func diffCoversExactlyTheHashesWhoseOwnerChanges() throws {
        var random = SeededRandom(seed: 99)
        for round in 0..<20 {
            let old = try RingPlacement(virtualNodes: 8 + round).shardMap(for: shards(3 + round % 4), generation: 1)
            let new = try EvenPlacement().shardMap(for: shards(2 + round % 5), generation: 2)
            let moves = old.diff(to: new)
            #expect(moves == moves.sorted { $0.range < $1.range })
            for move in moves { #expect(move.source != move.target) }
            let probes = moves.flatMap { [$0.range.start, $0.range.last] } + (0..<2_000).map { _ in random.next() }
            for hash in probes {
                let containing = moves.filter { $0.range.contains(hash) }
                if old.owner(of: hash) == new.owner(of: hash) {
                    #expect(containing.isEmpty)
                } else {
                    #expect(containing == [Move(range: containing[0].range, source: old.owner(of: hash), target: new.owner(of: hash))])
                }
            }
        }
    }

    @Test func diffOfIdenticalMapsIsEmpty() throws {
        let map = try RingPlacement().shardMap(for: shards(4), generation: 1)
        #expect(map.diff(to: map.withGeneration(2)).isEmpty)
    }

    @Test func roundTripsThroughJSONWithHexBounds() throws {
        let range = HashRange(start: 0x10, last: .max)
        #expect(range.description == "[0x0000000000000010, 0x10000000000000000)")
        #expect(HashRange(start: 5, end: 5) == nil)
        #expect(HashRange(start: 5, end: 6) == HashRange(start: 5, last: 5))
    }

    @Test(arguments: [1, 2, 7, 64]) func mapsRoundTripThroughTheCompactLayout(shardCount: Int) throws {
        let map = try RingPlacement(virtualNodes: 64).shardMap(for: shards(shardCount), generation: 9)
        let data = try JSONEncoder().encode(map)
        #expect(try JSONDecoder().decode(ShardMap.self, from: data) == map)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"layout\":\"0="))
    }

    @Test func decodesTheOlderListOfAssignments() throws {
        let text =
            #"{"generation":3,"assignments":[{"range":{"start":"0x0","end":"0x8000000000000000"},"shard":"s1"},"#
            + #"{"range":{"start":"0x8000000000000000","end":"0x10000000000000000"},"shard":"s2"}]}"#
        let map = try JSONDecoder().decode(ShardMap.self, from: Data(text.utf8))
        #expect(map.generation == 3)
        #expect(map.owner(of: 1 << 63) == shard("s2"))
        #expect(map.owner(of: (1 << 63) - 1) == shard("s1"))
    }

    @Test(arguments: [
        "", "0=s1,0=s2", "1=s1", "0=s1,10=S2", "0=s1,zz=s2", "0=s1,20=s2,10=s3", "0s1", "0=s1,,10=s2",
    ])
    func rejectsACorruptLayout(layout: String) {
        let text = #"{"generation":1,"layout":"\#(layout)"}"#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(ShardMap.self, from: Data(text.utf8)) }
    }
}
