import Testing

@testable import ReshardCore

@Suite struct JumpHashTests {
    private func keys(_ count: Int, seed: UInt64 = 7) -> [UInt64] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.next() }
    }

    @Test func growingByOneMovesKeysOnlyToTheNewBucket() {
        let keys = keys(20_000)
        for buckets in 1...64 {
            var moved = 0
            for key in keys {
                let before = JumpHash.bucket(key, buckets: buckets)
                let after = JumpHash.bucket(key, buckets: buckets + 1)
                #expect((0..<buckets).contains(before))
                if after != before {
                    #expect(after == buckets)
                    moved += 1
                }
            }
            // The new bucket's share is 1/(n+1); 20,000 keys keep it within a few percent.
            let ideal = Double(keys.count) / Double(buckets + 1)
            #expect(abs(Double(moved) - ideal) < 0.1 * ideal + 60)
        }
    }

    @Test func bucketsHoldEqualShares() {
        var counts = Array(repeating: 0, count: 32)
        for key in keys(64_000, seed: 11) { counts[JumpHash.bucket(key, buckets: 32)] += 1 }
        for count in counts { #expect(abs(count - 2_000) < 200) }
    }

    @Test func oneBucketTakesEverything() {
        for key in keys(1_000) { #expect(JumpHash.bucket(key, buckets: 1) == 0) }
    }
}
