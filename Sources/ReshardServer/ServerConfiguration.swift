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
        maxHeaderBytes: Int = 32 * 1024
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
    }
}
