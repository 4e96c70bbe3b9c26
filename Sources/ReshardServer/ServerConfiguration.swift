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

    /// A configuration; the body limit defaults to 1 MiB.
    public init(
        host: String = "127.0.0.1",
        port: Int = 7420,
        adminToken: String,
        maxBodyBytes: Int = 1 << 20,
        newShardLocation: @escaping @Sendable (ShardID) -> ShardLocation
    ) {
        self.host = host
        self.port = port
        self.adminToken = adminToken
        self.maxBodyBytes = maxBodyBytes
        self.newShardLocation = newShardLocation
    }
}
