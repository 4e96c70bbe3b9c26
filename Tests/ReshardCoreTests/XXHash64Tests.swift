import Testing

@testable import ReshardCore

@Suite struct XXHash64Tests {
    /// Vectors published with xxHash (the empty input and the spec's examples), cross-checked
    /// against the reference C implementation.
    @Test(arguments: [
        ("", 0xEF46_DB37_51D8_E999 as UInt64),
        ("a", 0xD24E_C4F1_A98C_6E5B),
        ("abc", 0x44BC_2CF5_AD77_0999),
        ("xxhash", 0x32DD_3895_2C4B_C720),
        ("Nobody inspects the spammish repetition", 0xFBCE_A83C_8A37_8BF1),
        ("0123456789abcdef0123456789abcdef", 0x642A_9495_8E71_E6C5),
        ("12345678901234567890123456789012345678901234567890", 0xC3D6_838C_C7F5_1C03),
    ])
    func matchesReferenceVectors(input: String, expected: UInt64) {
        #expect(XXHash64.hash(input) == expected)
        #expect(XXHash64.hash(Array(input.utf8)) == expected)
    }

    @Test func coversEveryTailLength() {
        // 256 bytes 0...255 exercise the 32-byte stripes and every tail branch on the way.
        #expect(XXHash64.hash(Array(0...255)) == 0x1FAC_BE84_06CD_904B)
    }

    @Test func keyHashOrderingPreservesUnsignedOrder() {
        var random = SeededRandom(seed: 7)
        for _ in 0..<10_000 {
            let a = random.next()
            let b = random.next()
            #expect((a < b) == (KeyHash.ordered(a) < KeyHash.ordered(b)))
            #expect(KeyHash.unordered(KeyHash.ordered(a)) == a)
        }
        #expect(KeyHash.ordered(0) == .min)
        #expect(KeyHash.ordered(.max) == .max)
    }
}
