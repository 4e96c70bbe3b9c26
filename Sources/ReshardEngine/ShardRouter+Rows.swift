import ReshardCore
import ReshardStore

/// What a client write did: the row's new version, where it landed, and under which map.
public struct WriteReceipt: Sendable, Hashable {
    /// The primary key.
    public let pk: String
    /// The version the owning shard assigned.
    public let version: UInt64
    /// The shard that owns the row.
    public let shard: ShardID
    /// The shard-map generation the write was routed by.
    public let generation: UInt64
    /// Whether the write created the row (it was absent or a tombstone before).
    public var created = false
}

/// One page of a shard-key listing.
public struct RowPage: Sendable, Hashable {
    /// The rows, in primary-key byte order.
    public let rows: [RowRead]
    /// Where the next page starts; nil on the last page.
    public let next: ListCursor?
}

/// A live row as read through the router.
public struct RowRead: Sendable, Hashable {
    /// The primary key.
    public let pk: String
    /// The row's version.
    public let version: UInt64
    /// The row's JSON object text.
    public let body: String
    /// The shard it was read from.
    public let shard: ShardID
}

extension ShardRouter {
    /// The most rows one shard-key listing returns.
    public static let maxListLimit = 1_000

    /// Upserts `body` (a JSON object) as row `pk` of `table`; with `condition`, only when the
    /// stored row satisfies it (`RouterError.preconditionFailed` otherwise, nothing written).
    public func put(table: String, pk: String, body: [UInt8], condition: WriteCondition? = nil) async throws -> WriteReceipt {
        try await onCurrentLayout(table) { try await put($0, pk: pk, body: body, condition: condition) }
    }

    private func put(_ definition: TableDefinition, pk: String, body: [UInt8], condition: WriteCondition?) async throws -> WriteReceipt {
        try Self.validateKey(pk, what: "primary key", error: RouterError.invalidPrimaryKey)
        let object = try JSONObject(bytes: body)
        if let field = object[definition.primaryKey], field.keyText != pk {
            throw RouterError.pkMismatch(definition.primaryKey)
        }
        let shardKey: String
        if definition.isShardedByPrimaryKey && definition.lookup == nil {
            shardKey = pk
        } else {
            guard let value = object[definition.shardKey] else {
                throw RouterError.missingShardKey(definition.shardKey, where: "in the body")
            }
            guard let text = value.keyText else {
                throw RouterError.invalidShardKey("the shard key \(definition.shardKey) must be a string or an integer")
            }
            try Self.validateKey(text, what: "shard key", error: RouterError.invalidShardKey)
            shardKey = text
        }
        return try await measured(definition.name, key: shardKey, write: true, bytes: body.count) {
            if let lookup = definition.lookup {
                return try await lookupWrite(
                    definition, lookup: lookup, pk: pk, newKey: shardKey, body: object.text, given: nil, condition: condition)
            }
            return try await routedWrite(definition, pk: pk, shardKey: shardKey, body: object.text, condition: condition)
        }
    }

    /// Deletes row `pk` (leaving a tombstone); `shardKey` is required when the table is not
    /// sharded by its primary key. `condition` as for `put`.
    public func delete(table: String, pk: String, shardKey: String?, condition: WriteCondition? = nil) async throws -> WriteReceipt {
        try await onCurrentLayout(table) { try await delete($0, pk: pk, shardKey: shardKey, condition: condition) }
    }

    private func delete(_ definition: TableDefinition, pk: String, shardKey: String?, condition: WriteCondition?) async throws
        -> WriteReceipt
    {
        try Self.validateKey(pk, what: "primary key", error: RouterError.invalidPrimaryKey)
        if let lookup = definition.lookup {
            if let shardKey { try Self.validateKey(shardKey, what: "shard key", error: RouterError.invalidShardKey) }
            // Without the shard key, counted where the request lands first: the lookup entry.
            return try await measured(definition.name, key: shardKey ?? pk, write: true, bytes: 0) {
                try await lookupWrite(definition, lookup: lookup, pk: pk, newKey: nil, body: nil, given: shardKey, condition: condition)
            }
        }
        let key = try resolveShardKey(definition, pk: pk, given: shardKey)
        return try await measured(definition.name, key: key, write: true, bytes: 0) {
            try await routedWrite(definition, pk: pk, shardKey: key, body: nil, condition: condition)
        }
    }

    /// Reads row `pk`; tombstones read as not found.
    public func get(table: String, pk: String, shardKey: String?) async throws -> RowRead {
        try await onCurrentLayout(table) { try await get($0, pk: pk, shardKey: shardKey) }
    }

    private func get(_ definition: TableDefinition, pk: String, shardKey: String?) async throws -> RowRead {
        try Self.validateKey(pk, what: "primary key", error: RouterError.invalidPrimaryKey)
        if let lookup = definition.lookup {
            if let shardKey { try Self.validateKey(shardKey, what: "shard key", error: RouterError.invalidShardKey) }
            return try await measured(definition.name, key: shardKey ?? pk, write: false, bytes: 0) {
                try await lookupGet(definition, lookup: lookup, pk: pk, given: shardKey)
            }
        }
        let key = try resolveShardKey(definition, pk: pk, given: shardKey)
        return try await measured(definition.name, key: key, write: false, bytes: 0) {
            try await routedGet(definition, pk: pk, key: key)
        }
    }

    private func routedGet(_ definition: TableDefinition, pk: String, key: String) async throws -> RowRead {
        var shadow = canary.pick(shardKey: key)
        if let chosen = shadow {
            if let relayout = chosen.relayout {
                // A shard-key change's canary reads its table's new layout, until it is in force.
                if relayout.from.name != definition.name || definition.layoutGeneration >= relayout.to.layoutGeneration { shadow = nil }
            } else if snapshot.map.generation >= chosen.switchGeneration {
                shadow = nil
            }
        }
        // The new owner first (see ShadowReads): read in this order it can lag but never lead.
        var shadowRead: (row: StoredRow?, micros: UInt64)?
        if let shadow {
            let started = ContinuousClock.now
            do {
                if let relayout = shadow.relayout {
                    // Compared as images (version and content): the layouts key the row apart.
                    let image = try await layoutImage(relayout.to, pk: pk)
                    shadowRead = (image?.row(in: definition.storage), (ContinuousClock.now - started).wholeMicroseconds)
                } else if let target = snapshot.shards[shadow.move.target] {
                    let row = try await target.store.get(table: definition.storage, pk: pk)
                    shadowRead = (row, (ContinuousClock.now - started).wholeMicroseconds)
                }
            } catch {
                canary.recordError(error)
            }
        }
        let hash = KeyHash.of(key)
        // Chosen before the read, so a served read that fails counts against the new owner.
        let servedAlone = served.pick(hash, generation: snapshot.map.generation)
        let started = ContinuousClock.now
        let handle: ShardHandle
        let row: StoredRow?
        // Decided before the read: a redirect that ends while the read runs (the mover finished)
        // must still merge the old owner, which the new one may not have caught up with then.
        var redirect: (move: Move, reads: RouteModes.Reads)?
        do {
            (handle, row) = try await fencedRead(key, .get, of: definition) { handle in
                redirect = secondWrites.redirect(hash, owner: handle.record.id)
                return try await handle.store.read(table: definition.storage, pk: pk, shardKey: key)
            }
        } catch {
            if servedAlone {
                served.recordServed(micros: (ContinuousClock.now - started).wholeMicroseconds, failed: true, nowMillis: wallMillis())
            }
            throw error
        }
        if let shadow, let shadowRead, handle.record.id == shadow.move.source {
            let micros = (ContinuousClock.now - started).wholeMicroseconds
            let outcome = ShadowRead.classify(
                source: row, target: shadowRead.row, nowMillis: wallMillis(), lagAllowanceMillis: shadow.lagAllowanceMillis)
            canary.record(
                ShadowReads.Comparison(
                    table: definition.name, pk: pk, sourceVersion: row?.version, targetVersion: shadowRead.row?.version, outcome: outcome,
                    at: wallMillis()),
                latencyDeltaMicros: Int64(shadowRead.micros) - Int64(micros))
        }
        var answer = (row: row, shard: handle.record.id)
        if let (move, reads) = redirect {
            if servedAlone && reads == .newest {
                // Verified complete, the new owner answers alone: one read instead of two.
                served.recordServed(micros: (ContinuousClock.now - started).wholeMicroseconds, failed: false, nowMillis: wallMillis())
            } else {
                answer = try await redirectedRead(
                    definition.storage, pk: pk, row: row, from: handle, move: move, reads: reads, in: snapshot)
                // The path served reads replace (both owners), timed as their baseline.
                if reads == .newest && served.serving {
                    served.recordOldPath(micros: (ContinuousClock.now - started).wholeMicroseconds, nowMillis: wallMillis())
                }
            }
        }
        guard let row = answer.row, let body = row.body else { throw RouterError.rowNotFound }
        observe(row.version)
        return RowRead(pk: row.pk, version: row.version, body: body, shard: answer.shard)
    }

    /// Live rows of `table` that share `shardKey` (co-located on one shard), in pk order.
    public func list(table: String, shardKey: String, limit: Int) async throws -> [RowRead] {
        try await listPage(table: table, shardKey: shardKey, limit: limit).rows
    }

    /// One page of the live rows sharing `shardKey`, in primary-key byte order, after `cursor`
    /// when it is set (`ListCursor` says why each row is listed once); the page's `next` is set
    /// when more rows follow.
    public func listPage(table: String, shardKey: String, limit: Int, after cursor: ListCursor? = nil) async throws -> RowPage {
        if let cursor, cursor.shardKey != shardKey {
            throw RouterError(.badRequest, "invalid_cursor", "the cursor belongs to another shard key's listing")
        }
        return try await onCurrentLayout(table) { try await list($0, shardKey: shardKey, limit: limit, after: cursor?.after) }
    }

    private func list(_ definition: TableDefinition, shardKey: String, limit: Int, after: String?) async throws -> RowPage {
        try Self.validateKey(shardKey, what: "shard key", error: RouterError.invalidShardKey)
        return try await measured(definition.name, key: shardKey, write: false, bytes: 0) {
            try await routedList(definition, shardKey: shardKey, limit: limit, after: after)
        }
    }

    private func routedList(_ definition: TableDefinition, shardKey: String, limit: Int, after: String?) async throws -> RowPage {
        let limit = min(max(limit, 1), Self.maxListLimit)
        // One more than asked, to know whether a next page exists without an empty last page.
        let fetch = limit + 1
        let hash = KeyHash.of(shardKey)
        // A layout with a lookup stores rows under shard key and primary key together; for one
        // shard key that prefix is common, so the stored order is the primary keys' order.
        let storedAfter = after.map { definition.lookup == nil ? $0 : LookupEntry.slot(pk: $0, key: shardKey) }
        // Decided before the read, as in `get`.
        var redirect: (move: Move, reads: RouteModes.Reads)?
        let (handle, rows) = try await fencedRead(shardKey, .list, of: definition) { handle in
            redirect = secondWrites.redirect(hash, owner: handle.record.id)
            return try await handle.store.rows(table: definition.storage, shardKey: shardKey, after: storedAfter, limit: fetch)
        }
        var listed = rows.map { (row: $0, shard: handle.record.id) }
        if let (move, _) = redirect {
            listed = try await redirectedList(
                definition.storage, shardKey: shardKey, after: storedAfter, rows: rows, from: handle, move: move, limit: fetch, in: snapshot
            )
        }
        let live = listed.compactMap { row, shard -> RowRead? in
            guard let body = row.body else { return nil }
            let pk = definition.lookup == nil ? row.pk : LookupEntry.unslot(row.pk)?.pk ?? row.pk
            return RowRead(pk: pk, version: row.version, body: body, shard: shard)
        }
        let page = Array(live.prefix(limit))
        let next = live.count > limit ? page.last.map { ListCursor(shardKey: shardKey, after: $0.pk) } : nil
        return RowPage(rows: page, next: next)
    }

    private func routedWrite(
        _ definition: TableDefinition, pk: String, shardKey: String, body: String?, condition: WriteCondition?
    ) async throws -> WriteReceipt {
        let hash = KeyHash.of(shardKey)
        return try await routed(shardKey, hash: hash, table: definition.name) { handle, current in
            // The condition travels with the write: only the owner's transaction sees the row as
            // the write will replace it. A redirected write copies the old owner's row first, so
            // the new owner checks against what the old one held.
            let write = ClientWrite(
                table: definition.storage, pk: pk, shardKey: shardKey, body: body,
                proposedVersion: nextVersion(), generation: current.map.generation, condition: condition)
            if let (move, _) = secondWrites.redirect(hash, owner: handle.record.id) {
                try await copyFirst(definition.storage, pk: pk, to: handle, move: move, in: current)
            }
            let outcome = try await call(handle, body == nil ? .delete : .put) { try await handle.store.write(write) }
            switch outcome {
            case .written(let version), .created(let version):
                observe(version)
                if let second = secondWrites.pick(hash, owner: handle.record.id, generation: current.map.generation) {
                    let row = StoredRow(table: definition.storage, pk: pk, shardKey: shardKey, version: version, body: body)
                    await writeSecond(row, to: second, in: current)
                }
                var receipt = WriteReceipt(pk: pk, version: version, shard: handle.record.id, generation: current.map.generation)
                receipt.created = outcome == .created(version: version)
                return receipt
            case .notFound:
                throw RouterError.rowNotFound
            case .preconditionFailed:
                throw RouterError.preconditionFailed
            }
        }
    }

    /// Runs `body` on the owner of `shardKey` (whose hash is `hash`) the way every client write
    /// goes: after the write gate (held during a cutover of the key's range), and again on the
    /// new owner when a fence shows that a newer map owns the key.
    func routed<T: Sendable>(
        _ shardKey: String, hash: UInt64, table: TableName, _ body: (ShardHandle, Snapshot) async throws -> T
    ) async throws -> T {
        guard await gate.admit(hash, table: table, timeout: holdTimeout) else {
            throw RouterError.rangeMoving(generation: snapshot.map.generation + 1)
        }
        var fenced = FencedWriteWait(deadline: ContinuousClock.now + holdTimeout)
        while true {
            let current = snapshot
            let handle = try owner(of: shardKey, in: current)
            do {
                return try await body(handle, current)
            } catch let error as StoreError where error.retiredLayout != nil {
                try await layoutMoved(table, to: error.retiredLayout ?? 0, wait: true)
            } catch let error as StoreError where error.fenceGeneration != nil {
                guard try await awaitSwitch(from: current.map.generation, hash: hash, wait: &fenced) else {
                    fenceMetrics.record(write: true, .noNewerMap)
                    throw RouterError.rangeMoving(generation: error.fenceGeneration ?? 0)
                }
                if snapshot.map.generation > current.map.generation { fenceMetrics.record(write: true, .rerouted) }
            }
        }
    }

    /// Reads from the key's owner. A fence above the generation we routed by means a newer map
    /// may own the key: after the switch the old owner lags, so re-read the map and read again
    /// from the new owner. If no newer map exists we are inside a cutover window, where the old
    /// owner still has every acknowledged write (new ones are held or refused), so its answer stands.
    func fencedRead<T: Sendable>(
        _ shardKey: String, _ operation: ShardMetrics.Operation, of definition: TableDefinition,
        _ body: (ShardHandle) async throws -> FencedRead<T>
    ) async throws -> (ShardHandle, T) {
        var current = snapshot
        var handle = try owner(of: shardKey, in: current)
        var result = try await call(handle, operation) { try await body(handle) }
        // A retired table: a newer layout may be in force. Without one the switch is under way,
        // writes are held or refused, and the retired layout's answer stands.
        if let retired = result.retired, retired > definition.layoutGeneration {
            try await layoutMoved(definition.name, to: retired, wait: false)
        }
        if let fence = result.fence, fence > current.map.generation {
            guard try await hasNewerMap(than: current.map.generation) else {
                fenceMetrics.record(write: false, .noNewerMap)
                return (handle, result.value)
            }
            fenceMetrics.record(write: false, .rerouted)
            current = snapshot
            handle = try owner(of: shardKey, in: current)
            result = try await call(handle, operation) { try await body(handle) }
        }
        return (handle, result.value)
    }

    /// Thrown when a table's layout changed under a request: it starts again on the new layout.
    struct LayoutChanged: Error {}

    /// Runs a request on table `name`'s current layout, again on a newer one when a shard-key
    /// switch happened under it (a write refused by a retired table, a read of one).
    func onCurrentLayout<T>(_ name: String, _ body: (TableDefinition) async throws -> T) async throws -> T {
        for _ in 0..<3 {
            let definition = try table(named: name)
            do {
                return try await body(definition)
            } catch is LayoutChanged {
                continue
            } catch let error as StoreError where error.retiredLayout != nil {
                // A store call outside `routed` met the switch: the client retries, never a 500.
                throw Self.layoutMoving(name)
            }
        }
        throw Self.layoutMoving(name)
    }

    static func layoutMoving(_ name: String) -> RouterError {
        RouterError(.unavailable, "layout_moving", "table \(name) is switching to a new layout; retry", retryAfterSeconds: 1)
    }

    /// A store said `table`'s storage was retired for layout generation `layout`: re-read the
    /// tables, and when that layout (or a later one) is in force, start the request again on it
    /// (`LayoutChanged`). Otherwise the switch is between its retirement and its publish: a read
    /// goes on with what it read (`wait` false); a write waits for the publish like a held write,
    /// and past the hold bound is answered 503.
    func layoutMoved(_ table: TableName, to layout: UInt64, wait: Bool) async throws {
        let deadline = ContinuousClock.now + holdTimeout
        var pause = Duration.milliseconds(2)
        while true {
            try await adoptTables(try await metadata.tables())
            if (snapshot.tables[table]?.layoutGeneration ?? 0) >= layout { throw LayoutChanged() }
            guard wait else { return }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw RouterError.rangeMoving(generation: layout) }
            if gate.holds(0, table: table) {
                _ = await gate.admit(0, table: table, timeout: left)
            } else {
                try await Task.sleep(for: min(pause, left))
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    /// Re-reads the map; whether the router now routes by a newer generation than `generation`
    /// (also when another request refreshed it first).
    func hasNewerMap(than generation: UInt64) async throws -> Bool {
        try await refreshShardMap()
        return snapshot.map.generation > generation
    }

    /// How long a fenced write has left to wait, and its next pause between tries.
    struct FencedWriteWait {
        let deadline: ContinuousClock.Instant
        var pause: Duration = .milliseconds(2)
    }

    /// Waits for the cutover a fenced write met to move on; true when the write should be tried
    /// again, false once the hold bound has passed. A fence above the generation the write was
    /// routed by means a newer map exists (route again at once), or a cutover is between its
    /// fence and its publish: the write passed the gate just before the hold, or this router
    /// never held. The switch is milliseconds away, so the write waits instead of failing with
    /// 503: on the gate where this router holds the key, like a held write, else for a short
    /// pause. Each try goes to the store, whose fence decides, so the write goes on whichever
    /// way the cutover ends: at the new owner once the map is published, at the old one once an
    /// abandoned cutover has removed its fence, even when the hold was released before the
    /// write could see it.
    func awaitSwitch(from generation: UInt64, hash: UInt64, wait: inout FencedWriteWait) async throws -> Bool {
        if try await hasNewerMap(than: generation) { return true }
        let left = wait.deadline - ContinuousClock.now
        guard left > .zero else { return false }
        if gate.holds(hash) { return await gate.admit(hash, timeout: left) }
        try await Task.sleep(for: min(wait.pause, left))
        wait.pause = min(wait.pause * 2, .milliseconds(50))
        return true
    }

    public func table(named name: String) throws(RouterError) -> TableDefinition {
        guard let tableName = TableName(name) else { throw .invalidTableName(name) }
        guard let definition = snapshot.tables[tableName] else { throw .unknownTable(name) }
        return definition
    }

    private func resolveShardKey(_ definition: TableDefinition, pk: String, given: String?) throws(RouterError) -> String {
        if definition.isShardedByPrimaryKey {
            // Routing by anything but the pk would look on the wrong shard.
            if let given, given != pk {
                throw .invalidShardKey("table \(definition.name) is sharded by its primary key; shard_key must equal it or be left out")
            }
            return pk
        }
        guard let given else {
            throw .missingShardKey(definition.shardKey, where: "as ?shard_key= for table \(definition.name)")
        }
        try Self.validateKey(given, what: "shard key", error: RouterError.invalidShardKey)
        return given
    }

    private func owner(of shardKey: String, in current: Snapshot) throws(RouterError) -> ShardHandle {
        try self.shard(current.map.owner(of: KeyHash.of(shardKey)), in: current)
    }

    /// Runs a store call with its metrics; backend failures become a retryable 503, never a crash.
    func call<T>(_ handle: ShardHandle, _ operation: ShardMetrics.Operation, _ body: () async throws -> T) async throws -> T {
        do {
            return try await handle.metrics.measure(operation, shard: handle.record.id, window: latencies, body)
        } catch let error as RouterError {
            throw error
        } catch let error as StoreError where error.fenceGeneration != nil || error.retiredLayout != nil {
            // The caller routes again: on a newer map (`routed`) or a newer layout (`layoutMoved`).
            throw error
        } catch let error as StoreError where error.isInvalidInput {
            // The router checks the same rule first; a store that refuses anyway still answers 400.
            throw RouterError(.badRequest, "invalid_request", error.description)
        } catch let error as StoreError where error.isUnknownTable {
            throw RouterError.shardUnavailable(handle.record.id.rawValue, error.description)
        } catch {
            logger.error("shard call failed", metadata: ["shard": "\(handle.record.id)", "op": "\(operation)", "error": "\(error)"])
            throw RouterError.shardUnavailable(handle.record.id.rawValue, "\(error)")
        }
    }

    /// Runs a client request for `key` of `table` and counts it in `load`, failed or not (a
    /// refused request cost the shard too): `bytes` sent, plus those of the rows answered.
    func measured<T: RowPayload>(
        _ table: TableName, key: String, write: Bool, bytes: Int, _ body: () async throws -> T
    ) async throws -> T {
        let started = ContinuousClock.now
        func count(_ answered: Int) {
            let hash = KeyHash.of(key)
            let counts = LoadCounts(
                reads: write ? 0 : 1, writes: write ? 1 : 0, bytes: UInt64(max(0, bytes)).adding(saturating: UInt64(max(0, answered))),
                micros: (ContinuousClock.now - started).wholeMicroseconds)
            load.record(table: table, key: key, hash: hash, shard: snapshot.map.owner(of: hash), counts, now: wallMillis())
        }
        do {
            let result = try await body()
            count(result.payloadBytes)
            return result
        } catch {
            count(0)
            throw error
        }
    }

    static func validateKey(_ key: String, what: String, error: (String) -> RouterError) throws(RouterError) {
        if let problem = RowKey.problem(key) { throw error("the \(what) \(problem)") }
    }
}

/// What a request answered, in bytes of row bodies (for the load statistics).
protocol RowPayload {
    var payloadBytes: Int { get }
}

extension WriteReceipt: RowPayload {
    var payloadBytes: Int { 0 }
}

extension RowRead: RowPayload {
    var payloadBytes: Int { body.utf8.count }
}

extension RowPage: RowPayload {
    var payloadBytes: Int { rows.reduce(0) { $0 + $1.body.utf8.count } }
}
