import Testing

@testable import reshard_bench

/// The arithmetic of `reshard-bench scale` and its options: a prediction is only as good as this.
@Suite struct ScaleModelTests {
    /// 1,000 shards, 1e9 rows, the balanced add's exact share, 100,000 rows/s of 200 bytes.
    func model(
        shards: Int = 1_000, rows: Int = 1_000_000_000, fraction: Double = 1.0 / 1_001, sources: Int = 40, journalBytes: Int = 10_000
    ) -> ScaleModel {
        ScaleModel(
            shards: shards, rows: rows,
            plan: .init(
                movedFraction: fraction, sources: sources, moves: 45, rangesBefore: 256_000, rangesAfter: 256_030,
                planBytes: 10_000_000, journalBytes: journalBytes),
            rates: .init(
                copyRowsPerSecond: 100_000, bytesPerRow: 200, planSaveMillis: 300, journalSaveMillis: 0.5, publishMillis: 80,
                pickupMillis: 60),
            knobs: .init(copyParallelism: 8, chunkRows: 1_000, bytesPerRange: 32))
    }

    @Test func rowsAndBytesMovedAreThePlansShareOfTheRows() {
        let m = model()
        #expect(abs(m.rowsMoved - 999_000.999) < 0.01)
        #expect(abs(m.bytesMoved - 199_800_199.8) < 1)
    }

    @Test func everySourceAndTheTargetOpenAChangeStream() {
        #expect(model(sources: 40).changeStreams == 41)
        #expect(model(sources: 1).changeStreams == 2)
    }

    @Test func theTargetBoundTimeIsRowsOverTheMeasuredRate() {
        #expect(abs(model().copySecondsTargetBound - 9.99000999) < 1e-6)
    }

    @Test func sourcesReadSideBySideOnlyUpToTheCopyParallelism() {
        #expect(model(sources: 40).sourcesReadingAtOnce == 8)
        #expect(model(sources: 3).sourcesReadingAtOnce == 3)
        #expect(abs(model(sources: 40).copySecondsSourceBound - model().copySecondsTargetBound / 8) < 1e-9)
        #expect(abs(model(sources: 3).copySecondsSourceBound - model().copySecondsTargetBound / 3) < 1e-9)
    }

    @Test func memoryIsTheChunksInFlightPlusBothMapsAndDoesNotGrowWithRows() {
        let small = model(rows: 1_000)
        let large = model(rows: 1_000_000_000_000)
        #expect(small.chunkBufferBytes == 1_600_000)
        #expect(large.chunkBufferBytes == small.chunkBufferBytes)
        #expect(large.mapMemoryBytes == Double((256_000 + 256_030) * 32))
    }

    /// The plan (both maps) is written once; every round writes the rest alone.
    @Test func theCopyIsJournaledOncePerRoundOfFullChunks() {
        let m = model(rows: 8_000_000, fraction: 0.5)
        #expect(m.journalSaves == 500)
        #expect(m.journalBytesWritten == 10_000_000 + 500 * 10_000)
        #expect(abs(m.journalSeconds - (0.3 + 0.25)) < 1e-9)
        // A partial round is still a round.
        #expect(model(rows: 8_001, fraction: 1).journalSaves == 2)
    }

    @Test func nothingToMoveCostsNothing() {
        let m = model(rows: 5, fraction: 0)
        #expect(m.rowsMoved == 0)
        #expect(m.copySecondsTargetBound == 0)
        #expect(m.journalSaves == 0)
    }

    @Test func everyAssumptionIsStated() {
        let text = model().assumptions.joined(separator: "\n")
        for phrase in ["target bound", "source bound", "copyParallelism = 8", "replication slot", "journal", "publish"] {
            #expect(text.contains(phrase))
        }
    }

    @Test func countsAcceptPlainIntegersAndDecimalExponents() throws {
        #expect(try ScaleCount.parse("1e9", option: "--rows", maximum: ScaleBench.maximumRows) == 1_000_000_000)
        #expect(try ScaleCount.parse("1000000000", option: "--rows", maximum: ScaleBench.maximumRows) == 1_000_000_000)
        #expect(try ScaleCount.parse("1E12", option: "--rows", maximum: ScaleBench.maximumRows) == 1_000_000_000_000)
        #expect(try ScaleCount.parse("2.5e3", option: "--rows", maximum: ScaleBench.maximumRows) == 2_500)
        #expect(try ScaleCount.parse("1", option: "--shards", maximum: ScaleBench.maximumShards) == 1)
    }

    @Test(arguments: [
        ("0", "at least 1"), ("-5", "at least 1"), ("-0", "at least 1"), ("1e13", "at most 1e12"),
        ("1000000000001", "at most 1e12"), ("18446744073709551615", "at most 1e12"), ("abc", "whole number"),
        ("", "whole number"), ("1.5", "whole number"), ("1e-3", "at least 1"), ("inf", "whole number"), ("nan", "whole number"),
        ("0x10", "whole number"), (" 5", "whole number"), ("2^64-1", "whole number"),
    ])
    func countsRefuseWhatNamesNoClusterWithASentence(text: String, reason: String) {
        let refusal = #expect(throws: ScaleCount.Refusal.self) {
            try ScaleCount.parse(text, option: "--rows", maximum: ScaleBench.maximumRows)
        }
        #expect(refusal?.description.contains("--rows") == true)
        #expect(refusal?.description.contains(reason) == true, "\(refusal?.description ?? "no refusal")")
    }

    @Test func shardsHaveTheirOwnCeiling() {
        #expect(throws: ScaleCount.Refusal.self) { try ScaleCount.parse("10001", option: "--shards", maximum: ScaleBench.maximumShards) }
        #expect(throws: ScaleCount.Refusal.self) { try ScaleCount.parse("1e5", option: "--shards", maximum: ScaleBench.maximumShards) }
    }

    @Test func limitsPrintAsTheyAreTyped() {
        #expect(ScaleCount.plain(1_000_000_000_000) == "1e12")
        #expect(ScaleCount.plain(1_000_000_000) == "1e9")
        #expect(ScaleCount.plain(10_000) == "10,000")
        #expect(ScaleCount.plain(1_500_000) == "1,500,000")
    }

    @Test(arguments: [
        ["--rows", "-5"], ["--rows", "0"], ["--shards", "-5"], ["--rows", "abc"], ["--rows", "1e13"], ["--shards", "1e5"],
    ])
    func theCommandRefusesBadCountsWithTheirSentence(arguments: [String]) {
        do {
            _ = try ScaleBench.parse(arguments)
            Issue.record("\(arguments) was accepted")
        } catch {
            let message = ScaleBench.message(for: error)
            #expect(message.contains(arguments[0]) && message.contains("must be"), "\(message)")
        }
    }

    @Test func theCommandTakesEitherSpelling() throws {
        #expect(try ScaleBench.parse(["--rows", "1000000000", "--shards", "1e3"]).rows == "1000000000")
        #expect(try ScaleBench.parse([]).rows == "1e9")
    }
}
