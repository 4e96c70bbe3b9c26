/// Any member name of a JSON object, to find those a type does not define.
struct AnyCodingKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// The first member (in name order, so the answer does not depend on the order a client
    /// wrote them in) that `Keys` does not define, if any: for bodies that refuse unknown members.
    func firstUnknownMember<Keys: CodingKey>(of _: Keys.Type) throws -> String? {
        try container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue).sorted().first { Keys(stringValue: $0) == nil }
    }
}
