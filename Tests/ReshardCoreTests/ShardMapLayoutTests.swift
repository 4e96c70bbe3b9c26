import Foundation
import Testing

@testable import ReshardCore

/// `ShardMap.layoutBytes` and `ShardMap(generation:layout:)`: the byte-level form of the map a
/// metadata store keeps. Every map round-trips exactly; every malformed layout is refused with
/// the byte it failed at, never repaired.
@Suite struct ShardMapLayoutTests {
    /// The layout as the earlier string-based encoder wrote it, for a differential check.
    func reference(_ map: ShardMap) -> String {
        map.assignments.map { String($0.range.start, radix: 16) + "=" + $0.shard.rawValue }.joined(separator: ",")
    }

    /// A random map of up to `ranges` ranges over `names`, with starts anywhere in the space
    /// (the extremes included).
    func randomMap(_ random: inout SeededRandom, ranges: Int, names: [ShardID]) throws -> ShardMap {
        var starts: Set<UInt64> = [0]
        for _ in 0..<ranges {
            switch random.next() % 4 {
            case 0: starts.insert(UInt64.max - random.next() % 16)
            case 1: starts.insert(random.next() % 4_096)
            default: starts.insert(random.next())
            }
        }
        let sorted = starts.sorted()
        let assignments = sorted.indices.map { index in
            RangeAssignment(
                range: HashRange(start: sorted[index], last: index + 1 < sorted.count ? sorted[index + 1] - 1 : .max),
                shard: names[Int(random.next() % UInt64(names.count))])
        }
        return try ShardMap(generation: random.next(), assignments: assignments)
    }

    @Test func randomMapsRoundTripAndMatchTheStringEncoder() throws {
        var random = SeededRandom(seed: 0x1a70)
        let longest = String(repeating: "z", count: 32)
        let names = [shard("a"), shard("s1"), shard("shard-0001"), shard("x_y-z9"), shard(longest)]
        for ranges in [0, 1, 2, 5, 64, 1_000] {
            for _ in 0..<20 {
                let map = try randomMap(&random, ranges: ranges, names: names)
                let bytes = map.layoutBytes
                #expect(String(decoding: bytes, as: UTF8.self) == reference(map))
                #expect(try ShardMap(generation: map.generation, layout: bytes) == map)
                let json = try JSONEncoder().encode(map)
                #expect(try JSONDecoder().decode(ShardMap.self, from: json) == map)
            }
        }
    }

    @Test func aRingOfAThousandShardsRoundTrips() throws {
        let map = try RingPlacement().shardMap(for: (1...1_000).map { shard("shard-\($0)") }, generation: UInt64.max)
        #expect(map.assignments.count > 200_000)
        #expect(try ShardMap(generation: UInt64.max, layout: map.layoutBytes) == map)
    }

    /// What a hand-edited or damaged file may hold but no encoder writes: accepted when it still
    /// means one map, normalised to the text the encoder writes.
    @Test func upperCaseHexLeadingZerosAndRepeatedOwnersAreReadAsTheSameMap() throws {
        let map = try ShardMap(generation: 4, layout: Array("0000=a,8000000000000000=a,C000000000000000=b".utf8))
        #expect(map.assignments.count == 2)
        #expect(String(decoding: map.layoutBytes, as: UTF8.self) == "0=a,c000000000000000=b")
    }

    @Test(arguments: [
        ("", "empty entry"),
        (",", "',' in a range start"),
        ("0=s1,", "empty entry"),
        ("0=s1,,10=s2", "',' in a range start"),
        ("=s1", "empty range start"),
        ("0s1", "'s' in a range start"),
        ("0", "without '='"),
        ("1=s1", "not 0"),
        ("0=s1,10=s2,10=s3", "must increase"),
        ("0=s1,20=s2,10=s3", "must increase"),
        ("0=s1,10000000000000000=s2", "above 2^64"),
        ("0=s1,+10=s2", "'+' in a range start"),
        ("0=s1,-10=s2", "'-' in a range start"),
        ("0=", "invalid shard name"),
        ("0=S1", "invalid shard name"),
        ("0=1s", "invalid shard name"),
        ("0=s1=s2", "invalid shard name"),
        ("0=s 1", "invalid shard name"),
        ("0=" + String(repeating: "a", count: 33), "longer than 32"),
        ("0=s1\u{0}", "invalid shard name"),
        ("0=s\u{0}1", "invalid shard name"),
        ("0=sé", "invalid shard name"),
        ("0=s1,1\u{0}=s2", "byte 0x0 in a range start"),
    ])
    func malformedLayoutsAreRefusedNamingTheProblem(layout: String, problem: String) {
        #expect {
            _ = try ShardMap(generation: 1, layout: Array(layout.utf8))
        } throws: { error in
            "\(error)".contains(problem)
        }
    }

    @Test func bytesThatAreNotUTF8AreRefused() {
        for name: [UInt8] in [[0x73, 0xFF], [0x73, 0xC3], [0xC3, 0xA9], [0x73, 0xED, 0xA0, 0x80]] {
            #expect(throws: ShardMapLayoutError.self) { try ShardMap(generation: 1, layout: Array("0=".utf8) + name) }
        }
        #expect(throws: ShardMapLayoutError.self) { try ShardMap(generation: 1, layout: [0x30, 0xFF, 0x3D, 0x61]) }
    }

    /// The error names the byte offset, so that an operator can find the damage in a file.
    @Test func theErrorNamesTheOffset() {
        #expect {
            _ = try ShardMap(generation: 1, layout: Array("0=a,10=b,1g=c".utf8))
        } throws: { error in
            "\(error)" == "layout byte 10: 'g' in a range start"
        }
    }
}

/// `ShardMap.applying(_:generation:)`, the inverse of `diff(to:)`: how a metadata store keeps a
/// published map as the moves from the map it replaced.
@Suite struct ShardMapMovesTests {
    @Test func applyingTheDiffOfRandomMapsGivesTheNewMap() throws {
        var random = SeededRandom(seed: 0xd1ff)
        let names = [shard("a"), shard("b"), shard("c"), shard("d")]
        let layouts = ShardMapLayoutTests()
        for ranges in [0, 1, 3, 17, 300] {
            for _ in 0..<40 {
                let old = try layouts.randomMap(&random, ranges: ranges, names: names)
                let new = try layouts.randomMap(&random, ranges: Int(random.next() % UInt64(ranges + 2)), names: names)
                let moves = old.diff(to: new)
                #expect(try old.applying(moves, generation: new.generation) == new)
                #expect(try old.applying([], generation: 7) == old.withGeneration(7))
            }
        }
    }

    @Test func anAddShardOnARingIsAppliedExactly() throws {
        let before = try RingPlacement().shardMap(for: shards(50), generation: 1)
        let after = try RingPlacement().shardMap(for: shards(51), generation: 2)
        #expect(try before.applying(before.diff(to: after), generation: 2) == after)
    }

    @Test func movesThatDoNotFitTheMapAreRefused() throws {
        let map = try ShardMap(
            generation: 1,
            assignments: [
                RangeAssignment(range: HashRange(start: 0, last: 99), shard: shard("a")),
                RangeAssignment(range: HashRange(start: 100, last: .max), shard: shard("b")),
            ])
        let wrongSource = [Move(range: HashRange(start: 10, last: 20), source: shard("b"), target: shard("c"))]
        let spanning = [Move(range: HashRange(start: 90, last: 110), source: shard("a"), target: shard("c"))]
        let unordered = [
            Move(range: HashRange(start: 200, last: 300), source: shard("b"), target: shard("c")),
            Move(range: HashRange(start: 10, last: 20), source: shard("a"), target: shard("c")),
        ]
        let overlapping = [
            Move(range: HashRange(start: 10, last: 20), source: shard("a"), target: shard("c")),
            Move(range: HashRange(start: 20, last: 30), source: shard("a"), target: shard("d")),
        ]
        for moves in [wrongSource, spanning, unordered, overlapping] {
            #expect(throws: ShardMapMovesError.self) { try map.applying(moves, generation: 2) }
        }
        let whole = [Move(range: HashRange(start: 0, last: 99), source: shard("a"), target: shard("b"))]
        #expect(try map.applying(whole, generation: 2).assignments == [RangeAssignment(range: .full, shard: shard("b"))])
    }
}
