/// A strict RFC 8259 reader for row bodies: one JSON object in UTF-8, nothing else.
///
/// Reshard stores a row body as the client's exact text, so the text must mean the same thing
/// to every reader that will ever see it: the router (which reads the key fields), both store
/// backends, the checksums, and the client that reads it back. This reader refuses whatever
/// readers disagree on, instead of guessing:
///
/// - any encoding but UTF-8 (Foundation's decoder detects UTF-16 and UTF-32 without a BOM, and
///   their NUL bytes then cut the stored text short), and raw control characters;
/// - a duplicate member name at any depth (which of two values counts differs between parsers,
///   so the router could place a row by one shard key while an application reads another);
/// - an escaped lone surrogate such as `"\ud800"` (it has no UTF-8 form; PostgreSQL refuses it);
/// - nesting deeper than `maxDepth`.
///
/// Numbers are kept as written, whatever their size: `1e999` is valid JSON and is stored and
/// returned byte for byte. Only a key field read by the router must be a string or an integer
/// that fits in 64 bits.
public enum StrictJSON {
    /// The deepest nesting of arrays and objects accepted.
    public static let maxDepth = 512

    /// A top-level member's value, as far as the router needs it.
    public enum Member: Sendable, Hashable {
        /// A string, decoded.
        case string(String)
        /// An integer literal (no fraction, no exponent) that fits in `Int64`.
        case integer(Int64)
        /// Anything else: a larger or non-integer number, `true`, `false`, `null`, an array or an object.
        case other

        /// The text a key field stands for: a string as is, an integer in decimal.
        public var keyText: String? {
            switch self {
            case .string(let text): text
            case .integer(let number): String(number)
            case .other: nil
            }
        }
    }

    /// Why a body was refused, with the byte offset where reading stopped.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong.
        public let reason: String
        /// The byte offset in the body.
        public let offset: Int

        /// A sentence for the client.
        public var description: String { "\(reason) (at byte \(offset))" }
    }

    /// The body as text and its top-level members, or a `Failure` unless `bytes` is exactly one
    /// JSON object in UTF-8 (surrounding whitespace allowed).
    public static func object(_ bytes: [UInt8]) throws(Failure) -> (text: String, members: [String: Member]) {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(reason: "the body is not valid UTF-8 (JSON bodies must be UTF-8)", offset: firstInvalidUTF8(bytes))
        }
        var reader = Reader(bytes: bytes)
        let members = try reader.document()
        return (text, members)
    }

    /// Like `object`, with the byte range of each top-level member's value in `bytes`: a
    /// container's exact text can be cut out of a larger document (a batch's rows).
    public static func objectSpans(_ bytes: [UInt8]) throws(Failure) -> (members: [String: Member], spans: [String: Range<Int>]) {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw Failure(reason: "the body is not valid UTF-8 (JSON bodies must be UTF-8)", offset: firstInvalidUTF8(bytes))
        }
        var reader = Reader(bytes: bytes)
        let members = try reader.document()
        return (members, reader.spans)
    }

    /// The byte range of each element of `bytes`, which must be exactly one JSON array
    /// (surrounding whitespace allowed), checked as strictly as an object's members.
    public static func arrayElements(_ bytes: [UInt8]) throws(Failure) -> [Range<Int>] {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw Failure(reason: "the text is not valid UTF-8", offset: firstInvalidUTF8(bytes))
        }
        var reader = Reader(bytes: bytes)
        return try reader.arrayDocument()
    }

    /// The offset of the first byte that breaks UTF-8.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        var low = 0
        var high = bytes.count
        // The longest valid prefix, by bisection; a prefix may end inside a character, which
        // makes it invalid too, so the answer is within three bytes of the real offending byte.
        while low < high {
            let middle = (low + high + 1) / 2
            if String(validating: bytes[..<middle], as: UTF8.self) != nil { low = middle } else { high = middle - 1 }
        }
        return low
    }
}

extension StrictJSON {
    /// A single pass over the bytes with an explicit stack, so deep nesting costs memory in
    /// proportion to `maxDepth`, never the thread's stack.
    struct Reader {
        let bytes: [UInt8]
        var index = 0
        /// Where each top-level member's value lies, filled by `document`.
        var spans: [String: Range<Int>] = [:]

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// One container being read: an object (with the names seen so far) or an array.
        private enum Frame {
            case object(names: Set<String>)
            case array
        }

        mutating func document() throws(Failure) -> [String: Member] {
            skipWhitespace()
            guard peek() == UInt8(ascii: "{") else { throw fail("the body must be a JSON object") }
            let members = try topLevelObject()
            skipWhitespace()
            guard index == bytes.count else { throw fail("unexpected text after the JSON object") }
            return members
        }

        private mutating func topLevelObject() throws(Failure) -> [String: Member] {
            index += 1
            var members: [String: Member] = [:]
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return members
            }
            while true {
                skipWhitespace()
                let nameAt = index
                let name = try string()
                guard members[name] == nil else { throw Failure(reason: "duplicate member name \"\(name)\"", offset: nameAt) }
                try colon()
                skipWhitespace()
                let start = index
                members[name] = try memberValue()
                spans[name] = start..<valueEnd(after: start)
                skipWhitespace()
                guard let next = take() else { throw fail("the object is not closed") }
                if next == UInt8(ascii: "}") { return members }
                guard next == UInt8(ascii: ",") else { throw fail("expected , or } in the object", back: 1) }
            }
        }

        /// Where the value that starts at `start` and was just read ends: reading a container
        /// also reads the whitespace after it, which is not the value's (no value ends in it).
        private func valueEnd(after start: Int) -> Int {
            var end = index
            while end > start, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[end - 1]) { end -= 1 }
            return end
        }

        /// One array and nothing else; the range of each element.
        mutating func arrayDocument() throws(Failure) -> [Range<Int>] {
            skipWhitespace()
            guard take() == UInt8(ascii: "[") else { throw fail("expected a JSON array", back: 1) }
            var elements: [Range<Int>] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
            } else {
                while true {
                    skipWhitespace()
                    let start = index
                    try value()
                    elements.append(start..<valueEnd(after: start))
                    skipWhitespace()
                    guard let next = take() else { throw fail("the array is not closed") }
                    if next == UInt8(ascii: "]") { break }
                    guard next == UInt8(ascii: ",") else { throw fail("expected , or ] in the array", back: 1) }
                }
            }
            skipWhitespace()
            guard index == bytes.count else { throw fail("unexpected text after the JSON array") }
            return elements
        }

        /// A top-level member's value: strings and numbers are read into `Member`, containers
        /// are checked and skipped.
        private mutating func memberValue() throws(Failure) -> Member {
            switch peek() ?? 0 {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                let isInteger = try number()
                if isInteger, let value = Int64(String(decoding: bytes[start..<index], as: UTF8.self)) {
                    return .integer(value)
                }
                return .other
            default:
                try value()
                return .other
            }
        }

        /// Any JSON value, nested containers included, read without recursion.
        private mutating func value() throws(Failure) {
            var stack: [Frame] = []
            // Whether the next token starts a value (true) or ends one inside a container.
            var wantValue = true
            while true {
                skipWhitespace()
                if wantValue {
                    guard let byte = peek() else { throw fail("the body ends where a value was expected") }
                    switch byte {
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        guard stack.count < StrictJSON.maxDepth - 1 else {
                            throw fail("the body nests deeper than \(StrictJSON.maxDepth) levels")
                        }
                        index += 1
                        skipWhitespace()
                        if byte == UInt8(ascii: "{") {
                            stack.append(.object(names: []))
                            if peek() == UInt8(ascii: "}") {
                                index += 1
                                stack.removeLast()
                                wantValue = false
                            } else {
                                try memberName(&stack)
                            }
                        } else {
                            stack.append(.array)
                            if peek() == UInt8(ascii: "]") {
                                index += 1
                                stack.removeLast()
                                wantValue = false
                            }
                        }
                        continue
                    case UInt8(ascii: "\""): _ = try string()
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try number()
                    case UInt8(ascii: "t"): try literal("true")
                    case UInt8(ascii: "f"): try literal("false")
                    case UInt8(ascii: "n"): try literal("null")
                    default: throw fail("unexpected character where a value was expected")
                    }
                    wantValue = false
                }
                guard let frame = stack.last else { return }
                skipWhitespace()
                guard let next = take() else { throw fail("a container is not closed") }
                switch (frame, next) {
                case (.object, UInt8(ascii: ",")):
                    skipWhitespace()
                    try memberName(&stack)
                    wantValue = true
                case (.array, UInt8(ascii: ",")):
                    wantValue = true
                case (.object, UInt8(ascii: "}")), (.array, UInt8(ascii: "]")):
                    stack.removeLast()
                default:
                    throw fail("expected , or the end of the container", back: 1)
                }
            }
        }

        /// Reads `"name":` of the innermost object, refusing a name it already has.
        private mutating func memberName(_ stack: inout [Frame]) throws(Failure) {
            guard case .object(var names) = stack.last else { return }
            let nameAt = index
            let name = try string()
            guard names.insert(name).inserted else { throw Failure(reason: "duplicate member name \"\(name)\"", offset: nameAt) }
            stack[stack.count - 1] = .object(names: names)
            try colon()
        }

        private mutating func colon() throws(Failure) {
            skipWhitespace()
            guard take() == UInt8(ascii: ":") else { throw fail("expected : after a member name", back: 1) }
        }

        private mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            let matches =
                index + count <= bytes.count
                && word.withUTF8Buffer { expected in bytes[index..<index + count].elementsEqual(expected) }
            guard matches else { throw fail("unexpected character where a value was expected") }
            index += count
        }

        /// A number per RFC 8259's grammar; whether it is an integer literal.
        private mutating func number() throws(Failure) -> Bool {
            if peek() == UInt8(ascii: "-") { index += 1 }
            guard let first = peek(), isDigit(first) else { throw fail("a number needs a digit") }
            index += 1
            if first != UInt8(ascii: "0") { skipDigits() }
            var isInteger = true
            if peek() == UInt8(ascii: ".") {
                index += 1
                guard let digit = peek(), isDigit(digit) else { throw fail("a fraction needs a digit") }
                skipDigits()
                isInteger = false
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                index += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
                guard let digit = peek(), isDigit(digit) else { throw fail("an exponent needs a digit") }
                skipDigits()
                isInteger = false
            }
            return isInteger
        }

        /// A string, decoded; escapes are checked, lone surrogates and raw control characters refused.
        private mutating func string() throws(Failure) -> String {
            guard take() == UInt8(ascii: "\"") else { throw fail("expected a string", back: 1) }
            var decoded: [UInt8] = []
            while true {
                guard let byte = take() else { throw fail("a string is not closed") }
                switch byte {
                case UInt8(ascii: "\""):
                    // The bytes were validated as UTF-8 and escapes produce whole scalars.
                    return String(decoding: decoded, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    try escape(into: &decoded)
                case 0..<0x20:
                    throw fail("a control character must be escaped inside a string", back: 1)
                default:
                    decoded.append(byte)
                }
            }
        }

        private mutating func escape(into decoded: inout [UInt8]) throws(Failure) {
            guard let byte = take() else { throw fail("a string is not closed") }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(byte)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                let at = index - 2
                var value = try hex4()
                if (0xD800...0xDBFF).contains(value) {
                    guard take() == UInt8(ascii: "\\"), take() == UInt8(ascii: "u") else {
                        throw Failure(reason: "a lone surrogate escape has no UTF-8 form", offset: at)
                    }
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Failure(reason: "a lone surrogate escape has no UTF-8 form", offset: at)
                    }
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(value) {
                    throw Failure(reason: "a lone surrogate escape has no UTF-8 form", offset: at)
                }
                guard let scalar = Unicode.Scalar(value) else { throw Failure(reason: "an invalid \\u escape", offset: at) }
                decoded.append(contentsOf: UTF8.encode(scalar).map { Array($0) } ?? [])
            default:
                throw fail("an invalid escape in a string", back: 1)
            }
        }

        private mutating func hex4() throws(Failure) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = take() else { throw fail("a \\u escape needs four hex digits") }
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("a \\u escape needs four hex digits", back: 1)
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func take() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        private mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        private mutating func skipDigits() {
            while let byte = peek(), isDigit(byte) { index += 1 }
        }

        private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

        private func fail(_ reason: String, back: Int = 0) -> Failure {
            Failure(reason: reason, offset: max(0, index - back))
        }
    }
}
