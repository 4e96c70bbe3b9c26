import Foundation
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
