extension API {
    /// `PUT /v1/tables/{table}/rows/{pk}`: the write is acknowledged with this version.
    public struct WriteReceipt: Codable, Sendable, Hashable {
        /// The primary key written.
        public var pk: String
        /// The version the owning shard assigned; a later write of the row gets a higher one.
        public var version: UInt64
        /// The shard that owns the row.
        public var shard: String
        /// The shard-map generation the write was routed by.
        public var generation: UInt64

        enum CodingKeys: String, CodingKey {
            case pk, version, shard, generation
        }

        /// An acknowledgement.
        public init(pk: String, version: UInt64, shard: String, generation: UInt64) {
            self.pk = pk
            self.version = version
            self.shard = shard
            self.generation = generation
        }
    }

    /// `DELETE /v1/tables/{table}/rows/{pk}`: the delete is acknowledged; its tombstone keeps `version`.
    public struct DeleteReceipt: Codable, Sendable, Hashable {
        /// The primary key deleted.
        public var pk: String
        /// The tombstone's version.
        public var version: UInt64
        /// The shard that owns the row.
        public var shard: String
        /// The shard-map generation the delete was routed by.
        public var generation: UInt64
        /// Always true.
        public var deleted: Bool

        enum CodingKeys: String, CodingKey {
            case pk, version, shard, generation, deleted
        }

        /// An acknowledged delete.
        public init(pk: String, version: UInt64, shard: String, generation: UInt64) {
            self.pk = pk
            self.version = version
            self.shard = shard
            self.generation = generation
            deleted = true
        }
    }

    /// The members of a `Row` (`GET /v1/tables/{table}/rows/{pk}`) other than its body.
    ///
    /// For decoding only: the server writes a `Row` itself, with the body as the exact text the
    /// client stored; a client that needs the body reads it from the response's JSON.
    public struct RowMetadata: Codable, Sendable, Hashable {
        /// The primary key.
        public var pk: String
        /// The row's version.
        public var version: UInt64
        /// The shard it was read from.
        public var shard: String

        enum CodingKeys: String, CodingKey {
            case pk, version, shard
        }

        /// A row's key, version and shard.
        public init(pk: String, version: UInt64, shard: String) {
            self.pk = pk
            self.version = version
            self.shard = shard
        }
    }
}
