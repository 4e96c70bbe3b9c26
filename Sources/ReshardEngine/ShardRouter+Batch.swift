import ReshardCore

/// Batches of reads and writes of one table: each item goes the way a single request goes (held
/// during a cutover, retried on a newer map's owner after a fence, its condition checked by the
/// owner), with items grouped by the shard that owns them so that every shard works on its part
/// at once, a few items at a time.
extension ShardRouter {
    /// The most items one batch may hold.
    public static let maxBatchItems = 100
    /// Items of one batch in flight on one shard at a time: enough to overlap round trips (and
    /// fill SQLite's group commit), few enough that one batch cannot take a shard's pool.
    static let batchLanesPerShard = 4

    /// One read of a batch: row `pk`, by `shardKey` when the table needs it.
    public struct BatchRead: Sendable, Hashable {
        public let pk: String
        public let shardKey: String?

        public init(pk: String, shardKey: String?) {
            self.pk = pk
            self.shardKey = shardKey
        }
    }

    /// One write of a batch.
    public enum BatchWrite: Sendable, Hashable {
        /// Upsert row `pk` with the JSON object `body`.
        case put(pk: String, body: [UInt8], condition: WriteCondition?)
        /// Delete row `pk`, by `shardKey` when the table needs it.
        case delete(pk: String, shardKey: String?, condition: WriteCondition?)

        public var pk: String {
            switch self {
            case .put(let pk, _, _), .delete(let pk, _, _): pk
            }
        }
    }

    /// Reads each item; the answers in the items' order. An unknown table fails the whole batch.
    public func batchGet(table: String, _ items: [BatchRead]) async throws -> [Result<RowRead, RouterError>] {
        let definition = try self.table(named: table)
        let keyed = items.indices.map { (index: $0, key: Self.batchKey(definition, pk: items[$0].pk, shardKey: items[$0].shardKey)) }
        return await inLanes(keyed) { index in
            try await self.get(table: table, pk: items[index].pk, shardKey: items[index].shardKey)
        }
    }

    /// Writes each item; the answers in the items' order. An unknown table fails the whole batch;
    /// so does a primary key named twice (which of the two would win is undefined).
    public func batchWrite(table: String, _ items: [BatchWrite]) async throws -> [Result<WriteReceipt, RouterError>] {
        let definition = try self.table(named: table)
        var seen = Set<String>()
        for item in items where !seen.insert(item.pk).inserted {
            throw RouterError(.badRequest, "duplicate_item", "the batch names the primary key \(item.pk.prefix(80)) more than once")
        }
        let keyed = items.indices.map { index in
            switch items[index] {
            case .put(let pk, let body, _):
                (index: index, key: Self.batchKey(definition, pk: pk, shardKey: Self.bodyShardKey(definition, body: body)))
            case .delete(let pk, let shardKey, _): (index: index, key: Self.batchKey(definition, pk: pk, shardKey: shardKey))
            }
        }
        return await inLanes(keyed) { index in
            switch items[index] {
            case .put(let pk, let body, let condition):
                try await self.put(table: table, pk: pk, body: body, condition: condition)
            case .delete(let pk, let shardKey, let condition):
                try await self.delete(table: table, pk: pk, shardKey: shardKey, condition: condition)
            }
        }
    }

    /// The key whose owner an item goes to first, for grouping only: the shard key, or the
    /// primary key where the table is placed by it or goes through a lookup entry (which lives
    /// on the primary key's owner). An item the router will refuse groups by its primary key.
    private static func batchKey(_ definition: TableDefinition, pk: String, shardKey: String?) -> String {
        guard definition.lookup == nil, !definition.isShardedByPrimaryKey else { return pk }
        return shardKey ?? pk
    }

    /// A put body's shard key, if it has one the router can read.
    private static func bodyShardKey(_ definition: TableDefinition, body: [UInt8]) -> String? {
        guard definition.lookup == nil, !definition.isShardedByPrimaryKey else { return nil }
        return (try? JSONObject(bytes: body))?[definition.shardKey]?.keyText
    }

    /// Runs `body` for each item, grouped by the shard that owns its key in the current map,
    /// every shard's items in `batchLanesPerShard` lanes at once.
    private func inLanes<T: Sendable>(
        _ items: [(index: Int, key: String)], _ body: @escaping @Sendable (Int) async throws -> T
    ) async -> [Result<T, RouterError>] {
        let map = snapshot.map
        let byShard = Dictionary(grouping: items) { map.owner(of: KeyHash.of($0.key)) }
        var lanes: [[Int]] = []
        for group in byShard.values.sorted(by: { $0[0].index < $1[0].index }) {
            let count = min(Self.batchLanesPerShard, group.count)
            for lane in 0..<count { lanes.append(stride(from: lane, to: group.count, by: count).map { group[$0].index }) }
        }
        var results = [Result<T, RouterError>?](repeating: nil, count: items.count)
        // `items` holds each index once, so `results` is indexed by position.
        await withTaskGroup(of: [(Int, Result<T, RouterError>)].self) { group in
            for lane in lanes {
                group.addTask {
                    var answers: [(Int, Result<T, RouterError>)] = []
                    for index in lane {
                        do {
                            answers.append((index, .success(try await body(index))))
                        } catch let error as RouterError {
                            answers.append((index, .failure(error)))
                        } catch {
                            answers.append((index, .failure(Self.batchItemFailed(error))))
                        }
                    }
                    return answers
                }
            }
            for await answers in group {
                for (index, result) in answers { results[index] = result }
            }
        }
        return results.map { $0 ?? .failure(Self.batchItemFailed(CancellationError())) }
    }

    /// An item that failed other than as the router answers requests: retryable, never a crash.
    private static func batchItemFailed(_ error: any Error) -> RouterError {
        RouterError(
            .unavailable, "item_failed", "the item failed (\(String(describing: error).prefix(200))); retry it", retryAfterSeconds: 1)
    }
}
