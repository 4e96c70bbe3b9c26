import Testing

@testable import ReshardCore

@Suite struct HybridLogicalClockTests {
    @Test func staysMonotonicWhenTheWallClockStepsBack() {
        var clock = HybridLogicalClock()
        var previous: UInt64 = 0
        var random = SeededRandom(seed: 5)
        var wall: UInt64 = 1_700_000_000_000
        for _ in 0..<100_000 {
            // Steps of −50…+50 ms, including long runs backwards.
            wall = wall &+ (random.next() % 101) &- 50
            let stamp = clock.next(wallMillis: wall)
            #expect(stamp > previous)
            previous = stamp
        }
    }

    @Test func followsTheWallClockWhenItMovesForward() {
        var clock = HybridLogicalClock()
        let first = clock.next(wallMillis: 1000)
        #expect(HybridLogicalClock.millis(of: first) == 1000)
        #expect(clock.next(wallMillis: 1000) == first + 1)
        #expect(HybridLogicalClock.millis(of: clock.next(wallMillis: 2000)) == 2000)
    }

    @Test func observedTimestampsAreOvertaken() {
        var clock = HybridLogicalClock()
        clock.observe(5_000 << 16)
        #expect(clock.next(wallMillis: 10) > 5_000 << 16)
    }

    @Test func versionRuleNeverGoesBackwards() {
        #expect(VersionRule.next(current: nil, proposed: 10) == 10)
        #expect(VersionRule.next(current: 50, proposed: 10) == 51)
        #expect(VersionRule.next(current: 50, proposed: 80) == 80)
        #expect(VersionRule.replaces(incoming: 5, stored: nil))
        #expect(!VersionRule.replaces(incoming: 5, stored: 5))
        #expect(!VersionRule.replaces(incoming: 4, stored: 5))
        #expect(VersionRule.replaces(incoming: 6, stored: 5))
    }
}

@Suite struct ChecksumTests {
    let table = TableName("t")!

    func row(_ pk: String, _ version: UInt64, _ body: String?) -> StoredRow {
        StoredRow(table: table, pk: pk, shardKey: pk, version: version, body: body)
    }

    @Test func isIndependentOfOrder() {
        var random = SeededRandom(seed: 3)
        let rows = (0..<500).map { row("k\($0)", UInt64($0 + 1), "{\"n\":\($0)}") }
        let reference = RangeSummary(of: rows)
        for _ in 0..<10 {
            #expect(RangeSummary(of: rows.shuffled(using: &random)) == reference)
        }
        let halves = RangeSummary(of: rows.prefix(200)) + RangeSummary(of: rows.dropFirst(200))
        #expect(halves == reference)
    }

    @Test func seesEveryFieldOfARow() {
        let base = RangeSummary(of: [row("a", 1, "{}")])
        #expect(RangeSummary(of: [row("b", 1, "{}")]) != base)
        #expect(RangeSummary(of: [row("a", 2, "{}")]) != base)
        #expect(RangeSummary(of: [row("a", 1, "{ }")]) != base)
        #expect(RangeSummary(of: [row("a", 1, nil)]) != base)
        #expect(RangeSummary(of: [row("a", 1, nil)]).liveRows == 0)
    }

    @Test func md5MatchesTheRFCVectors() {
        #expect(MD5.hex("".utf8) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hex("abc".utf8) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(MD5.hex("message digest".utf8) == "f96b697d7cb7938d525a2f31aaf161d0")
        let long = "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
        #expect(MD5.hex(long.utf8) == "57edf4a22be3c955ac49da2e2107b67a")
    }

    /// Pinned against PostgreSQL's `RowDigest.sqlExpression` (values read with psql): a PostgreSQL
    /// shard's generated digest column must equal what SQLite shards store.
    @Test func rowDigestMatchesPostgreSQLsExpression() {
        #expect(Int64(bitPattern: RowDigest.of(pk: "a", version: 1, body: "{}")) == 2_034_904_621_451_746_896)
        #expect(Int64(bitPattern: RowDigest.of(pk: "é✓", version: UInt64(bitPattern: -5), body: nil)) == -814_512_345_649_854_202)
    }

    @Test func splitSumsRebuildTheWrappingSum() {
        var random = SeededRandom(seed: 11)
        let digests = (0..<1_000).map { _ in random.next() }
        let wrapping = digests.reduce(0, &+)
        let high = digests.reduce(0) { $0 + ($1 >> 32) }
        let low = digests.reduce(0) { $0 + ($1 & 0xFFFF_FFFF) }
        #expect(RangeSummary.checksum(highSum: high, lowSum: low) == wrapping)
    }
}
