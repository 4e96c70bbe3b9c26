import Testing

@testable import ReshardCore

@Suite struct RowKeyTests {
    @Test func keysOfPrintableUTF8UpToTheLimitAreLegal() {
        #expect(RowKey.isValid("a"))
        #expect(RowKey.isValid("user 42/é/日本/😀"))
        #expect(RowKey.isValid(String(repeating: "x", count: RowKey.maxBytes)))
        // 128 four-byte scalars are exactly 512 bytes.
        #expect(RowKey.isValid(String(repeating: "😀", count: RowKey.maxBytes / 4)))
    }

    @Test func emptyAndOverlongKeysAreRefused() {
        #expect(RowKey.problem("") == .empty)
        #expect(
            RowKey.problem(String(repeating: "x", count: RowKey.maxBytes + 1))
                == .tooLong(bytes: RowKey.maxBytes + 1, limit: RowKey.maxBytes))
        // 511 ASCII bytes plus one 4-byte scalar: 515 bytes though only 512 characters.
        let mixed = String(repeating: "x", count: RowKey.maxBytes - 1) + "😀"
        #expect(RowKey.problem(mixed) == .tooLong(bytes: RowKey.maxBytes + 3, limit: RowKey.maxBytes))
    }

    @Test(arguments: [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9F] as [UInt32])
    func everyControlCharacterIsRefusedWhereverItStands(value: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(value))
        for key in ["\(Character(scalar))", "victim\(Character(scalar))x", "é\(Character(scalar))"] {
            let offset = key.hasPrefix("victim") ? 6 : (key.hasPrefix("é") ? 2 : 0)
            #expect(RowKey.problem(key) == .controlCharacter(scalar, offset: offset), "\(key.unicodeScalars.map(\.value))")
        }
    }

    @Test func theNeighboursOfTheControlRangesAreLegal() {
        for value: UInt32 in [0x20, 0x7E, 0xA0, 0xFFFD, 0x10FFFF] {
            #expect(RowKey.isValid("k\(Character(Unicode.Scalar(value)!))"), "U+\(value)")
        }
    }

    @Test func theProblemNamesTheCharacterAndItsOffset() {
        #expect("\(RowKey.problem("ab\u{0}")!)".contains("U+0000 at byte 2"))
    }
}

@Suite struct StrictJSONTests {
    func accepts(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: StrictJSON.Member]? {
        do {
            let (stored, members) = try StrictJSON.object(Array(text.utf8))
            #expect(stored == text, "the text is kept as written", sourceLocation: sourceLocation)
            return members
        } catch {
            Issue.record("refused \(text): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    func refuses(_ bytes: [UInt8], _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try StrictJSON.object(bytes)
            Issue.record("accepted \(bytes)", sourceLocation: sourceLocation)
        } catch {
            #expect(reason.isEmpty || error.reason.contains(reason), "\(error)", sourceLocation: sourceLocation)
        }
    }

    func refuses(_ text: String, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        refuses(Array(text.utf8), reason, sourceLocation: sourceLocation)
    }

    @Test func readsTheTopLevelKeyFields() throws {
        let text = #" {"id":"a\u00e9\ud83d\ude00","n":-42,"f":1.5,"big":18446744073709551616,"o":{"x":[1,{}]},"t":true} "#
        let members = try #require(accepts(text))
        #expect(members["id"] == .string("aé😀"))
        #expect(members["n"] == .integer(-42))
        #expect(members["n"]?.keyText == "-42")
        #expect(members["f"] == .other)
        #expect(members["big"] == .other)
        #expect(members["o"] == .other)
        #expect(members["t"] == .other)
        #expect(accepts("{}") == [:])
    }

    @Test func numbersAreKeptAsWrittenWhateverTheirSize() throws {
        let text = #"{"huge":1e999,"tiny":-1E-999,"wide":123456789012345678901234567890.5}"#
        let members = try #require(accepts(text))
        #expect(members["huge"] == .other)
    }

    @Test func utf16AndUTF32WithoutAByteOrderMarkAreRefused() {
        let json = #"{"a":"b"}"#
        let utf16LE = json.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let utf16BE = json.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let utf32LE = json.unicodeScalars.flatMap { [UInt8($0.value & 0xFF), 0, 0, 0] }
        // Each is valid UTF-8 byte for byte (NUL is a UTF-8 character), so only the grammar refuses them.
        for bytes in [utf16LE, utf16BE, utf32LE] {
            refuses(bytes, "")
        }
        refuses([0xFF, 0xFE] + utf16LE, "not valid UTF-8")
        refuses([0xEF, 0xBB, 0xBF] + Array(json.utf8), "must be a JSON object")
        refuses([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D], "not valid UTF-8")
    }

    @Test func duplicateMemberNamesAreRefusedAtEveryDepth() {
        refuses(#"{"customer_id":"a","customer_id":"b"}"#, "duplicate member name \"customer_id\"")
        refuses(#"{"a":1,"\u0061":2}"#, "duplicate member name \"a\"")
        refuses(#"{"o":{"x":1,"y":[{"z":1,"z":2}]}}"#, "duplicate member name \"z\"")
        _ = accepts(#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#)
    }

    @Test func loneSurrogatesAreRefused() {
        refuses(#"{"a":"\ud800"}"#, "lone surrogate")
        refuses(#"{"a":"\udc00x"}"#, "lone surrogate")
        refuses(#"{"a":"\ud800\u0041"}"#, "lone surrogate")
        refuses(#"{"\ud83d":1}"#, "lone surrogate")
        _ = accepts(#"{"a":"\ud83d\ude00"}"#)
    }

    @Test func rawControlCharactersAndBadEscapesAreRefused() {
        refuses("{\"a\":\"x\u{0}y\"}", "control character")
        refuses("{\"a\":\"x\ny\"}", "control character")
        refuses(#"{"a":"\x"}"#, "invalid escape")
        refuses(#"{"a":"\u12"}"#, "four hex digits")
        _ = accepts(#"{"a":"\u0000\n\t\"\\\/"}"#)
        _ = accepts("{\"a\":\n\t1\r}")
    }

    @Test(arguments: [
        "", " ", "[]", "[{}]", "\"x\"", "1", "null", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1}{}",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":nul}",
        "{\"a\":[1,]}", "{\"a\":[1 2]}", "{a:1}", "{'a':1}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":1}x",
    ])
    func malformedBodiesAreRefused(text: String) {
        refuses(text, "")
    }

    @Test func nestingIsBoundedWithoutRecursion() {
        let deep = StrictJSON.maxDepth - 1
        _ = accepts("{\"a\":" + String(repeating: "[", count: deep) + String(repeating: "]", count: deep) + "}")
        let tooDeep = deep + 1
        refuses("{\"a\":" + String(repeating: "[", count: tooDeep) + String(repeating: "]", count: tooDeep) + "}", "deeper")
        // A million open brackets cost no stack.
        refuses("{\"a\":" + String(repeating: "[", count: 1_000_000), "deeper")
    }

    @Test func seededGarbageNeverTraps() {
        var random = SeededRandom(seed: 15)
        let alphabet = Array(#"{}[]":,-+.eE0123456789 \tntrufalse\u00"#.utf8) + [0x00, 0xC3, 0xFF, 0x80]
        var accepted = 0
        for _ in 0..<20_000 {
            let length = Int(random.next() % 24)
            let bytes = [UInt8(ascii: "{")] + (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            if (try? StrictJSON.object(bytes)) != nil { accepted += 1 }
        }
        #expect(accepted > 0)
    }
}

/// `WriteCondition` against every kind of stored row, as RFC 9110 evaluates a write's preconditions.
@Suite struct WriteConditionTests {
    @Test func everyCombinationOfPartsAgainstEveryRowState() {
        let tags: [WriteCondition.Tags?] = [nil, .any, .versions([]), .versions([5]), .versions([4, 5]), .versions([6])]
        for ifMatch in tags {
            for ifNoneMatch in tags {
                let condition = WriteCondition(ifMatch: ifMatch, ifNoneMatch: ifNoneMatch)
                for live in [nil, 5, 6] as [UInt64?] {
                    func named(_ part: WriteCondition.Tags?) -> Bool {
                        switch part {
                        case nil: false
                        case .any: live != nil
                        case .versions(let set): live.map(set.contains) ?? false
                        }
                    }
                    let expected = (ifMatch == nil || named(ifMatch)) && (ifNoneMatch == nil || !named(ifNoneMatch))
                    #expect(condition.admits(live: live) == expected, "\(condition) over \(String(describing: live))")
                }
            }
        }
    }

    @Test func outcomesFollowTheConditionThenTheDelete() {
        var written = 0
        let write = { () -> UInt64 in
            written += 1
            return 9
        }
        #expect(WriteOutcome.decide(condition: .version(5), live: 6, isDelete: false, write: write) == .preconditionFailed)
        #expect(WriteOutcome.decide(condition: .version(5), live: nil, isDelete: true, write: write) == .preconditionFailed)
        #expect(WriteOutcome.decide(condition: nil, live: nil, isDelete: true, write: write) == .notFound)
        #expect(written == 0)
        #expect(WriteOutcome.decide(condition: .absent, live: nil, isDelete: false, write: write) == .created(version: 9))
        #expect(WriteOutcome.decide(condition: .version(5), live: 5, isDelete: false, write: write) == .written(version: 9))
        #expect(written == 2)
        #expect(
            ClientWrite(
                table: TableName("t")!, pk: "a", shardKey: "a", body: nil, proposedVersion: 1, generation: 1, condition: WriteCondition()
            ).condition == nil)
    }
}

@Suite struct ListCursorTests {
    @Test func tokensRoundTripAndAreURLSafe() {
        let longest = String(repeating: "é", count: RowKey.maxBytes / 2)
        for (key, pk) in [("c1", "o1"), ("", "x"), ("😀", "a b/c?d"), (longest, longest), ("k", String(repeating: "z", count: 200))] {
            let cursor = ListCursor(shardKey: key, after: pk)
            let token = cursor.token
            #expect(
                token.utf8.allSatisfy {
                    $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 < 0x80 && Character(Unicode.Scalar($0)).isLetter)
                        || (0x30...0x39).contains($0)
                })
            if key.isEmpty {
                #expect(ListCursor(token: token) == nil, "an empty shard key is no key")
            } else {
                #expect(ListCursor(token: token) == cursor)
            }
        }
    }

    @Test func anythingButATokenWeWroteIsRefused() {
        let good = ListCursor(shardKey: "c1", after: "o1").token
        var hostile = [
            "", "=", "AQ", "AQ=", good + "=", good + "A", "!!!!", good.uppercased(), good + "\u{0}",
            String(repeating: "A", count: ListCursor.maxTokenLength + 4), "Ag" + good.dropFirst(2),
        ]
        // Keys RowKey refuses, a length past the end, a length that never ends, bytes that are not UTF-8.
        hostile += [[1, 2, 0x63, 0x00, 0x61], [1, 9, 0x63], [1, 0x80, 0x80, 0x80, 0x80, 0x80], [1, 1, 0xC3, 0x61], [1, 1, 0x63, 0xFF]]
            .map { Base64URL.encode($0) }
        for token in hostile where token != good {
            #expect(ListCursor(token: token) == nil, "\(token)")
        }
    }

    @Test func base64URLMatchesRFC4648Vectors() {
        let vectors = [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
    }
}

@Suite struct StrictJSONSpanTests {
    @Test func membersAndElementsAreCutOutExactly() throws {
        let text = #" { "items" : [ {"a":1} , "x\"y" ,  [ ] ,1e999 , {"b":{"c":[1,2]}}\#t] , "n": -0.5 } "#
        let bytes = Array(text.utf8)
        let (members, spans) = try StrictJSON.objectSpans(bytes)
        #expect(members["n"] == .other)
        let cut = { (range: Range<Int>, from: [UInt8]) in String(decoding: from[range], as: UTF8.self) }
        #expect(cut(try #require(spans["n"]), bytes) == "-0.5")
        let list = Array(bytes[try #require(spans["items"])])
        #expect(list.first == UInt8(ascii: "[") && list.last == UInt8(ascii: "]"))
        let elements = try StrictJSON.arrayElements(list).map { cut($0, list) }
        #expect(elements == [#"{"a":1}"#, #""x\"y""#, "[ ]", "1e999", #"{"b":{"c":[1,2]}}"#])
        #expect(try StrictJSON.arrayElements(Array(" [ ] ".utf8)).isEmpty)
    }

    @Test func arraysAreCheckedAsStrictlyAsObjects() {
        for bad in ["", "[", "[1,]", "[,1]", "[1 2]", "[1]]", "{}", #"[{"a":1,"a":2}]"#, "[\"\u{1}\"]", #"["\ud800"]"#] {
            #expect(throws: StrictJSON.Failure.self, "\(bad)") { try StrictJSON.arrayElements(Array(bad.utf8)) }
        }
        #expect(throws: StrictJSON.Failure.self) { try StrictJSON.arrayElements([0x5B, 0x22, 0xFF, 0x22, 0x5D]) }
    }
}
