import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Finds the admin token: an explicit value, then `RESHARD_ADMIN_TOKEN`, then the data folder's
/// `admin-token` file, which is created with mode 0600 (never wider, not even for an instant)
/// with a fresh random token on first start. A token file that others may read is refused: the
/// token is the key to every admin route.
enum AdminToken {
    static let environmentVariable = "RESHARD_ADMIN_TOKEN"
    /// The shortest token accepted on an address other than loopback.
    static let minimumBytesOffLoopback = 16

    static func resolve(explicit: String?, file: String, createIfMissing: Bool) throws -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = ProcessInfo.processInfo.environment[environmentVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        var status = stat()
        if stat(file, &status) == 0 {
            guard status.st_mode & 0o077 == 0 else {
                throw CLIError(
                    "the admin token file \(file) may be read by others (mode \(String(status.st_mode & 0o777, radix: 8))); run chmod 600 \(file)"
                )
            }
            let stored = try String(contentsOfFile: file, encoding: .utf8)
            let token = stored.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        guard createIfMissing else {
            throw CLIError("no admin token: pass --token, set \(environmentVariable), or point --data at the server's folder (\(file))")
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try createFile(file, holding: token + "\n")
        return token
    }

    /// Creates `file` with mode 0600 and writes `text`; fails if the file exists (O_EXCL) or is
    /// a symbolic link, so nothing else's permissions or contents are touched.
    static func createFile(_ file: String, holding text: String) throws {
        let descriptor = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CLIError("cannot create the admin token file \(file): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            throw CLIError("cannot write the admin token to \(file): \(String(cString: strerror(errno)))")
        }
    }

    /// Refuses a short token where the server listens beyond loopback; anyone on the network
    /// can try tokens there.
    static func check(_ token: String, host: String) throws {
        guard !isLoopback(host), token.utf8.count < minimumBytesOffLoopback else { return }
        throw CLIError(
            "--host \(host) listens beyond loopback: the admin token must be at least \(minimumBytesOffLoopback) bytes (it is \(token.utf8.count))"
        )
    }

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}

/// A failure the CLI reports in one line and exits non-zero for.
struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
