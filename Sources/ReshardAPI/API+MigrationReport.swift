extension API {
    /// `GET /v1/migrations/{id}/report`: what `reshard migrate report` draws: the migration's
    /// full status and the answering router's foreground latency per second from a minute before
    /// it began to a minute after it ended (as much of that as the router still holds: the last
    /// hour, since the router started).
    public struct MigrationReport: Codable, Sendable, Hashable {
        /// The migration's full status.
        public var migration: MigrationDetail
        /// Bytes of keys and bodies it copied.
        public var bytesCopied: Int
        /// Bytes its plan expected to copy, once known.
        public var bytesEstimated: Int?
        /// The router whose latency this is.
        public var router: String
        /// The router's foreground latency per second over the window, oldest first; seconds
        /// without requests are absent.
        public var latency: [Dashboard.Second]

        enum CodingKeys: String, CodingKey {
            case migration
            case bytesCopied = "bytes_copied"
            case bytesEstimated = "bytes_estimated"
            case router, latency
        }

        /// A report.
        public init(migration: MigrationDetail, bytesCopied: Int, bytesEstimated: Int?, router: String, latency: [Dashboard.Second]) {
            self.migration = migration
            self.bytesCopied = bytesCopied
            self.bytesEstimated = bytesEstimated
            self.router = router
            self.latency = latency
        }
    }
}
