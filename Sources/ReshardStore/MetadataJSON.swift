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
