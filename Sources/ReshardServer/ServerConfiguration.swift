import HummingbirdTLS
import ReshardCore
import ReshardStore

/// How the HTTP server is set up. Immutable once the server starts.
public struct ServerConfiguration: Sendable {
    /// The interface to listen on; 127.0.0.1 unless the operator opts in to more.
    public var host: String
    /// The port; 0 picks a free one (reported through `onServerRunning`).
    public var port: Int
    /// The bearer token every admin route requires.
    public var adminToken: String
    /// The largest request body accepted, in bytes.
    public var maxBodyBytes: Int
    /// Where a shard registered through `POST /v1/shards` keeps its data.
    public var newShardLocation: @Sendable (ShardID) -> ShardLocation
    /// A connection with no request in progress is closed after this long; it also bounds how
    /// long a client may take to send a request's head.
    public var idleTimeout: Duration
    /// A request whose body has not arrived whole this long after its head is dropped and its
    /// connection closed (a client trickling bytes would otherwise hold both forever).
    public var requestReadTimeout: Duration
    /// Connections served at once; past it new ones wait in the kernel's accept queue.
    public var maxConnections: Int
    /// The largest request head (request line and headers), in bytes.
    public var maxHeaderBytes: Int
    /// When set, the data routes (rows, events) need `Authorization: Bearer` with it (or the
    /// admin token); otherwise they are open, as on a trusted network.
    public var dataToken: String?
    /// When set, the server speaks HTTPS only, with this certificate chain and key.
    public var tls: TLSFiles?

    /// PEM files of the server's certificate chain and private key.
    public struct TLSFiles: Sendable, Hashable {
        public var certificateChain: String
        public var privateKey: String

        public init(certificateChain: String, privateKey: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    /// A configuration with production defaults: 1 MiB bodies, 60 s idle connections, 30 s to
    /// send a request, 1,024 connections, 32 KiB of headers.
    public init(
        host: String = "127.0.0.1",
        port: Int = 7420,
        adminToken: String,
        maxBodyBytes: Int = 1 << 20,
        newShardLocation: @escaping @Sendable (ShardID) -> ShardLocation,
        idleTimeout: Duration = .seconds(60),
        requestReadTimeout: Duration = .seconds(30),
        maxConnections: Int = 1_024,
        maxHeaderBytes: Int = 32 * 1024,
        dataToken: String? = nil,
        tls: TLSFiles? = nil
    ) {
        self.host = host
        self.port = port
        self.adminToken = adminToken
        self.maxBodyBytes = maxBodyBytes
        self.newShardLocation = newShardLocation
        self.idleTimeout = idleTimeout
        self.requestReadTimeout = requestReadTimeout
        self.maxConnections = maxConnections
        self.maxHeaderBytes = maxHeaderBytes
        self.dataToken = dataToken
        self.tls = tls
    }
}

/// A certificate or key file that cannot be used, said in a sentence.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public let description: String

    /// The server side of TLS from `files`.
    static func configuration(_ files: ServerConfiguration.TLSFiles) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
        } catch {
            throw TLSSetupError(description: "the TLS certificate file \(files.certificateChain) is not readable PEM: \(error)")
        }
        guard !chain.isEmpty else {
            throw TLSSetupError(description: "the TLS certificate file \(files.certificateChain) holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw TLSSetupError(description: "the TLS key file \(files.privateKey) is not a readable PEM private key: \(error)")
        }
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }
}
