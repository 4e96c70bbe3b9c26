import ReshardCore
import ReshardStore

/// One shard as the cluster view shows it.
public struct ShardInfo: Sendable, Hashable {
    /// The shard's name.
    public let id: ShardID
    /// `sqlite` today.
    public let backend: String
    /// File path or address.
    public let address: String
    /// How many ranges of the current map it owns.
    public let ranges: Int
    /// Its share of the hash space, 0…1.
    public let fraction: Double
    /// Live rows over every table.
    public let rows: Int
    /// Bytes of keys and bodies over every table (what a copy of them would move).
    public var bytes: Int = 0
    /// How it captures changes for migrations (`triggers`, `logical decoding …`); nil when the
    /// store could not say.
    public var changeCapture: String? = nil
}

/// The cluster as one router sees it.
public struct ClusterInfo: Sendable, Hashable {
    /// The shard map in force.
    public let map: ShardMap
    /// Every registered shard, by name, including ones that own no range yet.
    public let shards: [ShardInfo]
    /// Every table, by name.
    public let tables: [TableDefinition]
}

extension ShardRouter {
    /// Creates a table: storage on every registered shard first, then the metadata record, so a
    /// table that clients can see always has storage.
    public func createTable(name: String, primaryKey: String, shardKey: String) async throws -> TableDefinition {
        guard let tableName = TableName(name) else { throw RouterError.invalidTableName(name) }
        guard tableName.isClientName else {
            throw RouterError.invalidTable("table names may not contain \"__\": it is reserved for the storage of shard-key changes")
        }
        for field in [primaryKey, shardKey] where !TableDefinition.isValidField(field) {
            throw RouterError.invalidTable("field names match [a-z][a-z0-9_]{0,62}; got \"\(field.prefix(80))\"")
        }
        guard let definition = TableDefinition(name: tableName, primaryKey: primaryKey, shardKey: shardKey) else {
            throw RouterError.invalidTable("invalid table definition")
        }
        return try await adminLock.withLock {
            if snapshot.tables[tableName] != nil { throw RouterError.tableExists(name) }
            for handle in snapshot.shards.values {
                try await handle.store.ensureTable(tableName)
            }
            do {
                try await metadata.createTable(definition)
            } catch let error as MetadataError where error.isConflict {
                throw RouterError.tableExists(name)
            }
            update { $0.tables[tableName] = definition }
            logger.info("table created", metadata: ["table": "\(name)", "shard_key": "\(shardKey)"])
            return definition
        }
    }

    /// Registers a new, empty shard with storage for every table. It owns no range until a
    /// migration moves data to it.
    public func addShard(id: String, location: @Sendable (ShardID) -> ShardLocation) async throws -> ShardRecord {
        guard let shardID = ShardID(id) else { throw RouterError.invalidShardID(id) }
        return try await adminLock.withLock {
            if snapshot.shards[shardID] != nil { throw RouterError.shardExists(id) }
            let record = ShardRecord(id: shardID, location: location(shardID))
            let store: any ShardStore
            do {
                store = try await openStore(record)
            } catch {
                // An unreachable database is the operator's to fix, not a server fault.
                throw RouterError.shardUnavailable(id, "\(error)")
            }
            for table in snapshot.tables.values.flatMap(\.storages) {
                try await store.ensureTable(table)
            }
            do {
                try await metadata.addShard(record)
            } catch let error as MetadataError where error.isConflict {
                throw RouterError.shardExists(id)
            }
            let handle = ShardHandle(record: record, store: store, metrics: ShardMetrics(shard: id, factory: metricsFactory))
            update { $0.shards[shardID] = handle }
            logger.info("shard registered", metadata: ["shard": "\(id)", "address": "\(record.location.address)"])
            return record
        }
    }

    /// The tables, in name order.
    public var tables: [TableDefinition] { snapshot.tables.values.sorted { $0.name < $1.name } }

    /// The store of a registered shard, for tools that check data behind the router's back
    /// (the demo's placement check, verification); nil for an unknown shard.
    public func store(_ shard: ShardID) -> (any ShardStore)? { snapshot.shards[shard]?.store }

    /// Every registered shard, in the map or not yet.
    public var registeredShards: [ShardID] { snapshot.shards.keys.sorted() }

    /// Shards, ranges and live row counts; also refreshes the rows-per-shard gauges.
    public func cluster() async throws -> ClusterInfo {
        let current = snapshot
        var shards: [ShardInfo] = []
        for (id, handle) in current.shards.sorted(by: { $0.key < $1.key }) {
            var rows = 0
            var bytes = 0
            // Rows of the tables, not of their lookups.
            for table in current.tables.values {
                let summary = try await handle.store.summary(table: table.storage, range: .full)
                rows += summary.liveRows
                bytes += summary.bytes
            }
            handle.metrics.rows.record(rows)
            shards.append(
                ShardInfo(
                    id: id,
                    backend: handle.record.location.backend,
                    address: handle.record.location.address,
                    ranges: current.map.ranges(of: id).count,
                    fraction: current.map.fraction(ownedBy: id),
                    rows: rows,
                    bytes: bytes,
                    changeCapture: try? await handle.store.changeCapture()
                ))
        }
        return ClusterInfo(map: current.map, shards: shards, tables: current.tables.values.sorted { $0.name < $1.name })
    }
}
