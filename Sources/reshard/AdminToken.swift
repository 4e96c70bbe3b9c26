import Foundation

/// Finds the admin token: an explicit value, then `RESHARD_ADMIN_TOKEN`, then the data folder's
/// `admin-token` file, which is created (mode 0600) with a fresh random token on first start.
enum AdminToken {
    static let environmentVariable = "RESHARD_ADMIN_TOKEN"

    static func resolve(explicit: String?, file: String, createIfMissing: Bool) throws -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = ProcessInfo.processInfo.environment[environmentVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        if let stored = try? String(contentsOfFile: file, encoding: .utf8) {
            let token = stored.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        guard createIfMissing else {
            throw CLIError("no admin token: pass --token, set \(environmentVariable), or point --data at the server's folder (\(file))")
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        guard FileManager.default.createFile(atPath: file, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw CLIError("cannot write the admin token to \(file)")
        }
        return token
    }
}

/// A failure the CLI reports in one line and exits non-zero for.
struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
