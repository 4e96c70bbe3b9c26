import Foundation
import ReshardAPI
import Testing

@testable import reshard

/// The admin token guards every admin route: its file is its owner's alone from the first
/// byte, a file others may read is refused, and a short token is refused off loopback.
@Suite struct AdminTokenTests {
    func scratch() throws -> String {
        let folder = NSTemporaryDirectory() + "reshard-token-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    @Test func aNewTokenFileIsCreatedOwnerOnlyEvenUnderAWideUmask() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let previous = umask(0)
        defer { umask(previous) }
        let file = folder + "/admin-token"
        let token = try AdminToken.resolve(explicit: nil, file: file, createIfMissing: true)
        #expect(token.utf8.count == 64)
        #expect(try mode(file) == 0o600)
        #expect(try AdminToken.resolve(explicit: nil, file: file, createIfMissing: false) == token)
    }

    @Test func aTokenFileOthersMayReadIsRefused() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/admin-token"
        _ = try AdminToken.resolve(explicit: nil, file: file, createIfMissing: true)
        for loose in [0o644, 0o640, 0o604, 0o660] {
            try FileManager.default.setAttributes([.posixPermissions: loose], ofItemAtPath: file)
            #expect(throws: CLIError.self, "mode \(String(loose, radix: 8))") {
                try AdminToken.resolve(explicit: nil, file: file, createIfMissing: true)
            }
        }
    }

    @Test func aSymbolicLinkIsNeverWrittenThrough() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/elsewhere"
        try FileManager.default.createSymbolicLink(atPath: folder + "/admin-token", withDestinationPath: target)
        #expect(throws: CLIError.self) { try AdminToken.createFile(folder + "/admin-token", holding: "x\n") }
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func shortTokensAreRefusedOffLoopbackOnly() throws {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            try AdminToken.check("a", host: host)
        }
        for host in ["0.0.0.0", "10.0.0.5", "::", "db1.example"] {
            #expect(throws: CLIError.self, "\(host)") { try AdminToken.check("fifteen-bytes!!", host: host) }
            try AdminToken.check("sixteen-bytes!!!", host: host)
        }
    }
}

/// The watch's rate and ETA come from the server's phase log, not from when the watch began.
@Suite struct ProgressLineTests {
    func mark(_ phase: String, _ at: UInt64) -> API.PhaseMark {
        API.PhaseMark(phase: phase, atMs: at)
    }

    @Test func theRateCountsFromTheStartOfCopying() {
        let phases = [mark("preparing", 1_000), mark("copying", 2_000)]
        // 10,000 rows in the 5 s since copying began, however late the watch started.
        #expect(ProgressLine.copyRate(copied: 10_000, phases: phases, nowMillis: 7_000) == 2_000)
        // Once copying ended, its own duration counts.
        let later = phases + [mark("catching_up", 4_000), mark("verifying", 9_000)]
        #expect(ProgressLine.copyRate(copied: 10_000, phases: later, nowMillis: 60_000) == 5_000)
        #expect(ProgressLine.copyRate(copied: 10, phases: [mark("preparing", 1)], nowMillis: 5) == 0)
        #expect(ProgressLine.copyRate(copied: 10, phases: [mark("copying", 9)], nowMillis: 9) == 0)
    }

    @Test func theETAIsWhatIsLeftOverTheRate() {
        let line = ProgressLine.render(phase: "copying", copied: 1_000, estimated: 3_000, rate: 500)
        #expect(line.contains("ETA 4s"), "\(line)")
        #expect(!ProgressLine.render(phase: "copying", copied: 3_000, estimated: 3_000, rate: 500).contains("ETA"))
    }
}

/// serve's limits are options too: out of range, negative or beyond 64 bits, each is refused
/// before anything starts.
@Suite struct ServeOptionTests {
    @Test func limitsOutOfRangeAreRefused() {
        let refused: [[String]] = [
            ["--idle-timeout-ms", "0"], ["--idle-timeout-ms", "-1"], ["--idle-timeout-ms", "18446744073709551615"],
            ["--request-timeout-ms", "99"], ["--request-timeout-ms", "3600001"], ["--max-connections", "0"],
            ["--max-connections", "65537"], ["--shutdown-grace-ms", "-5"], ["--shutdown-grace-ms", "600001"], ["--host", ""],
            ["--host", "127.0.0.1\n"], ["--port", "65536"], ["--shards", "0"],
        ]
        for arguments in refused {
            #expect(throws: (any Error).self, "\(arguments)") { _ = try Serve.parse(arguments) }
        }
        for arguments in [["--idle-timeout-ms", "100"], ["--max-connections", "65536"], ["--shutdown-grace-ms", "0"]] {
            #expect(throws: Never.self, "\(arguments)") { _ = try Serve.parse(arguments) }
        }
    }
}

/// `migrate status ID` prints a migration whose journal the server could not read, instead of
/// failing to decode its short answer.
@Suite struct MigrationStatusAnswerTests {
    @Test func theShortFormOfAnUnreadableJournalIsPrinted() throws {
        let json =
            #"{"id":"mbroken","kind":"unknown","phase":"failed","moves":0,"rows_copied":0,"rows_estimated":null,"#
            + #""error":"the journal cannot be read"}"#
        let answer = try API.decode(API.MigrationStatus.self, from: Data(json.utf8))
        #expect(MigrationText.status(answer) == "migration mbroken (unknown): failed\n  error: the journal cannot be read")
        #expect(throws: (any Error).self) { try API.decode(API.MigrationStatus.self, from: Data("{}".utf8)) }
    }
}
