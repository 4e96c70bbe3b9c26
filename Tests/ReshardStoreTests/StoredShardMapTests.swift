import Foundation
import ReshardCore
import Testing

@testable import ReshardStore

/// `StoredShardMap`: the metadata stores' byte-level map text is exactly what the general JSON
/// coder writes, and any other text is judged by the general decoder.
@Suite struct StoredShardMapTests {
    func ring(_ shards: Int, generation: UInt64) throws -> ShardMap {
        try RingPlacement(virtualNodes: 16).shardMap(for: (1...shards).compactMap { ShardID("s\($0)") }, generation: generation)
    }

    @Test(arguments: [0, 1, 9, 10, 4_096, UInt64(Int64.max), UInt64.max])
    func theTextIsTheGeneralEncodersAndReadsBack(generation: UInt64) throws {
        let map = try ring(7, generation: generation)
        let text = StoredShardMap.encode(map)
        #expect(text == (try MetadataJSON.encode(map)))
        #expect(try StoredShardMap.decode(text) == map)
    }

    /// Text no Reshard of today writes but the general decoder reads: spaces, keys in another
    /// order, the older list of assignments.
    @Test func otherShapesGoThroughTheGeneralDecoder() throws {
        let map = try ring(3, generation: 12)
        let layout = String(decoding: map.layoutBytes, as: UTF8.self)
        for text in [
            #"{ "generation": 12, "layout": "\#(layout)" }"#,
            #"{"layout":"\#(layout)","generation":12}"#,
        ] {
            #expect(try StoredShardMap.decode(text) == map)
        }
        let older =
            #"{"generation":3,"assignments":[{"range":{"start":"0x0","end":"0x8000000000000000"},"shard":"s1"},"#
            + #"{"range":{"start":"0x8000000000000000","end":"0x10000000000000000"},"shard":"s2"}]}"#
        #expect(try StoredShardMap.decode(older).generation == 3)
    }

    @Test(arguments: [
        #"{"generation":1,"layout":"1=s1"}"#,
        #"{"generation":1,"layout":"0=s1,"}"#,
        #"{"generation":1,"layout":"0=S1"}"#,
        #"{"generation":1,"layout":"0=s\"1"}"#,
        #"{"generation":01,"layout":"0=s1"}"#,
        #"{"generation":18446744073709551616,"layout":"0=s1"}"#,
        #"{"generation":-1,"layout":"0=s1"}"#,
        #"{"generation":1,"layout":"0=s1"}x"#,
        #"{"generation":1,"layout":"0=s1""#,
        #"{"generation":1,"layout":"0=s1\u0000"}"#,
        #"{"generation":1}"#,
        "",
        "\u{0}",
    ])
    func damagedTextIsCorruptMetadata(text: String) {
        #expect {
            _ = try StoredShardMap.decode(text)
        } throws: { error in
            (error as? MetadataError).map { "\($0)".contains("corrupt") || "\($0)".contains("ShardMap") } ?? false
        }
    }
}

/// `StoredMoves`: a publish's moves and event, built by hand, are exactly the general encoder's
/// text, whatever the moves (none, the top of the space, long names, many).
@Suite struct StoredMovesTests {
    static func maps(_ seed: UInt64) throws -> (ShardMap, ShardMap) {
        var generator = SeededRandom(seed: seed)
        let names = ["s1", "a", "shard_with-32-characters-exactly", "z9"].compactMap(ShardID.init)
        func map(_ generation: UInt64) throws -> ShardMap {
            var bounds = Set((0..<Int(generator.next() % 40)).map { _ in generator.next() })
            bounds.insert(0)
            let starts = bounds.sorted()
            return try ShardMap(
                generation: generation,
                assignments: starts.enumerated().map { index, start in
                    let last = index + 1 < starts.count ? starts[index + 1] - 1 : .max
                    return RangeAssignment(range: HashRange(start: start, last: last), shard: names[Int(generator.next() % 4)])
                })
        }
        return (try map(1), try map(2))
    }

    @Test(arguments: 0..<64)
    func movesAndTheirEventAreTheGeneralEncodersText(seed: Int) throws {
        let (before, after) = try Self.maps(UInt64(seed))
        let event = MetadataEvent.published(after, replacing: before)
        let moves = StoredMoves.encode(event.moves)
        #expect(moves == (try MetadataJSON.encode(event.moves)))
        #expect(try StoredMoves.encode(event, moves: moves) == MetadataJSON.encode(event))
        #expect(try MetadataJSON.decode([Move].self, moves) == event.moves)
    }

    @Test func anEventWithAMigrationThatSpellsMovesIsStillExact() throws {
        let (before, after) = try Self.maps(7)
        var event = MetadataEvent.published(after, replacing: before)
        for id in [#""moves":[]"#, "\u{0}\"moves\":[]\\", "é\n"] {
            event.migration = id
            #expect(try StoredMoves.encode(event, moves: StoredMoves.encode(event.moves)) == MetadataJSON.encode(event))
        }
        #expect(StoredMoves.encode([]) == "[]")
    }
}
