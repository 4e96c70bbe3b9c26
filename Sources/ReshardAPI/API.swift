import Foundation

/// The JSON bodies of Reshard's HTTP API, one type per schema of `openapi.yaml`
/// (`components/schemas`), shared by the server that encodes them and every client that
/// decodes them, so the wire format is written once.
///
/// Values are plain (strings, integers, doubles, booleans, arrays, optionals): this target
/// depends on no other Reshard target, so a client links it alone. Names are the schemas'
/// except `ErrorBody` (the schema `Error`, which would shadow `Swift.Error` in this namespace).
/// A member the schema requires but lets be `null` is always written, as `null` when absent; a
/// member the schema may leave out is left out when absent. Row bodies are not here: the server
/// sends them as the exact text the client stored, which a `Codable` value cannot carry.
public enum API {
    /// The JSON text of `value` as the server sends it: keys sorted (the same value always
    /// gives the same bytes) and `/` unescaped.
    public static func encode(_ value: some Encodable) throws -> Data {
        try encoder.encode(value)
    }

    /// `T` from JSON text the server sent. Members a type does not know are ignored, so a
    /// client keeps working when the server adds one.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }

    /// `text` as one URL path segment or query value: every byte but RFC 3986's unreserved
    /// characters percent-encoded, so a key with `/`, `?`, `%` or any UTF-8 travels intact.
    public static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                escaped.append(byte)
            default:
                escaped += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: escaped, as: UTF8.self)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

extension API {
    /// Every error answer, `{"error":{"code","message"}}` (the schema `Error`).
    public struct ErrorBody: Codable, Sendable, Hashable {
        /// The error itself.
        public struct Detail: Codable, Sendable, Hashable {
            /// A stable snake_case code (`invalid_option`, `unknown_migration` …) that clients branch on.
            public var code: String
            /// A sentence for humans; its wording may change.
            public var message: String

            enum CodingKeys: String, CodingKey {
                case code, message
            }

            /// An error with its code and message.
            public init(code: String, message: String) {
                self.code = code
                self.message = message
            }
        }

        /// The code and the message.
        public var error: Detail

        enum CodingKeys: String, CodingKey {
            case error
        }

        /// The body of an error with `code` and `message`.
        public init(code: String, message: String) {
            error = Detail(code: code, message: message)
        }
    }

    /// `GET /healthz`: the router is up and routes by this shard-map generation.
    public struct Health: Codable, Sendable, Hashable {
        /// Always `ok`.
        public var status: String
        /// The shard-map generation this router routes by.
        public var generation: UInt64

        enum CodingKeys: String, CodingKey {
            case status, generation
        }

        /// A healthy router at `generation`.
        public init(generation: UInt64) {
            status = "ok"
            self.generation = generation
        }
    }
}

extension KeyedEncodingContainer {
    /// Writes `value`, or `null` when it is nil (synthesized `Encodable` would leave the member
    /// out): for members the schema requires even when they hold nothing.
    mutating func encodeNullable<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}
