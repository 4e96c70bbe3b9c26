import Foundation
import ReshardCore

/// The JSON text every metadata backend stores definitions, maps and journals as: sorted keys,
/// so equal values are equal text; unreadable text is corrupt metadata, never a crash.
enum MetadataJSON {
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw MetadataError.corrupt("\(type): \(error)")
        }
    }
}

/// Moves as stored, in a publish's event and in a generation kept as its moves: the text
/// `MetadataJSON.encode` writes, built by hand because the publish runs inside the cutover's
/// write hold, where the general encoder took 3.3 ms over the 226 moves of an added shard at
/// 1,000 shards (most of the publish). Nothing in a move needs escaping: hash bounds are `0x`
/// and lowercase hex digits, and shard names are `[a-z][a-z0-9_-]*` (`ShardID`).
enum StoredMoves {
    static func encode(_ moves: [Move]) -> String {
        var text = "["
        text.reserveCapacity(2 + moves.count * (88 + 2 * 32))
        for (index, move) in moves.enumerated() {
            if index > 0 { text += "," }
            text += #"{"range":{"end":""#
            text += move.range.endHex
            text += #"","start":""#
            text += move.range.startHex
            text += #""},"source":""#
            text += move.source.rawValue
            text += #"","target":""#
            text += move.target.rawValue
            text += #""}"#
        }
        return text + "]"
    }

    /// `event` as `MetadataJSON.encode` writes it, with `moves` (the text `encode` wrote for
    /// its moves) put in place of the general encoder's.
    static func encode(_ event: MetadataEvent, moves: String) throws -> String {
        var bare = event
        bare.moves = []
        let text = try MetadataJSON.encode(bare)
        // Sorted keys put "moves" once, and no other member's text can hold it (kinds, tables and
        // shard names are plain identifiers; a migration id is JSON-escaped, so its quotes are).
        guard let slot = text.range(of: #""moves":[]"#) else { return try MetadataJSON.encode(event) }
        return text.replacingCharacters(in: slot, with: #""moves":"# + moves)
    }
}

/// Shard maps as stored: the same text `MetadataJSON.encode` writes
/// (`{"generation":N,"layout":"…"}`, sorted keys, nothing in the layout to escape), built and
/// read as bytes. A map is published inside the cutover's write hold and read by every router
/// that follows it; at 1,000 shards its text is 5.5 MB, which the general coder takes tens to
/// hundreds of milliseconds over.
enum StoredShardMap {
    private static let head = Array(#"{"generation":"#.utf8)
    private static let middle = Array(#","layout":""#.utf8)
    private static let tail = Array(#""}"#.utf8)

    static func encode(_ map: ShardMap) -> String {
        let layout = map.layoutBytes
        var bytes: [UInt8] = []
        bytes.reserveCapacity(layout.count + 64)
        bytes.append(contentsOf: head)
        bytes.append(contentsOf: String(map.generation).utf8)
        bytes.append(contentsOf: middle)
        bytes.append(contentsOf: layout)
        bytes.append(contentsOf: tail)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads the text `encode` writes directly; any other shape (spaces, the older list of
    /// assignments, keys in another order) goes through the general decoder, which validates
    /// the same way.
    static func decode(_ text: String) throws -> ShardMap {
        var text = text
        let parsed: ShardMap?? = text.withUTF8 { bytes in
            guard bytes.starts(with: head), bytes.count >= head.count + 1 + middle.count + tail.count else { return nil }
            var index = head.count
            var generation: UInt64 = 0
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let (times, overflowTimes) = generation.multipliedReportingOverflow(by: 10)
                let (sum, overflowSum) = times.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                guard !overflowTimes, !overflowSum else { return nil }
                generation = sum
                index += 1
            }
            // JSON has no leading zeros; such text goes to the general decoder to be judged.
            guard index > head.count, bytes[head.count] != UInt8(ascii: "0") || index == head.count + 1,
                UnsafeBufferPointer(rebasing: bytes[index...]).starts(with: middle)
            else { return nil }
            let layoutStart = index + middle.count
            let layoutEnd = bytes.count - tail.count
            guard layoutStart <= layoutEnd, UnsafeBufferPointer(rebasing: bytes[layoutEnd...]).elementsEqual(tail) else { return nil }
            let layout = Array(UnsafeBufferPointer(rebasing: bytes[layoutStart..<layoutEnd]))
            // A quote or backslash in it means a JSON string this writer never makes.
            guard !layout.contains(UInt8(ascii: "\"")), !layout.contains(UInt8(ascii: "\\")) else { return nil }
            return .some(try? ShardMap(generation: generation, layout: layout))
        }
        switch parsed {
        case .some(.some(let map)): return map
        case .some(.none), .none: return try MetadataJSON.decode(ShardMap.self, text)
        }
    }
}
