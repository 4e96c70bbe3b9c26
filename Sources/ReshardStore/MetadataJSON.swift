import Foundation

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
