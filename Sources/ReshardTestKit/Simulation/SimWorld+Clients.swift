import ReshardCore
import ReshardEngine
import ReshardStore

/// Clients writing, deleting and reading through the two routers, as the real router routes:
/// by the router's map, re-reading the map when a shard's fence says it is stale, holding writes
/// of ranges that are cutting over, writing both owners where the strategy says so,
/// shadow-reading during the canary (new owner first).
extension SimWorld {
    /// One client operation through router `index`: a write, a delete or a read that checks it
    /// sees at least the latest acknowledged write.
    func clientStep(router index: Int) {
        state.withLock { state in
            let table = tables[Int(state.random.next() % UInt64(tables.count))]
            switch state.random.next() % 10 {
            case 0...4:
                let pk = keys[Int(state.random.next() % UInt64(keys.count))]
                submit(Op(table: table, pk: pk, body: "{\"n\":\(state.random.next() % 1000)}"), router: index, &state)
            case 5...6:
                let pk = keys[Int(state.random.next() % UInt64(keys.count))]
                submit(Op(table: table, pk: pk, body: nil), router: index, &state)
            default:
                let readable = keys + coldKeys
                read(Key(table: table, pk: readable[Int(state.random.next() % UInt64(readable.count))]), router: index, &state)
            }
        }
    }

    /// Keys written once before the migration and never again: a corruption planted in one of
    /// their copies is not overwritten by replication, so only the canary or verification can
    /// find it.
    var coldKeys: [String] { (0..<8).map { "cold\($0)" } }

    func submit(_ op: Op, router index: Int, _ state: inout State) {
        if state.routers[index].held.contains(where: { $0.contains(KeyHash.of(op.pk)) }) {
            state.routers[index].parked.append(op)
        } else {
            execute(op, router: index, &state)
        }
    }

    /// Routes and writes; a fenced write re-reads the map once. Only a write a shard took counts
    /// as acknowledged.
    func execute(_ op: Op, router index: Int, _ state: inout State) {
        let key = Key(table: op.table, pk: op.pk)
        for attempt in 0..<2 {
            let map = state.routers[index].map
            guard let store = stores[map.owner(of: KeyHash.of(op.pk))] else { return }
            do {
                try copyFirst(key, owner: map.owner(of: KeyHash.of(op.pk)), router: index, at: map.generation, &state)
            } catch let error as StoreError where error.fenceGeneration != nil {
                state.coverage.fencedWrites += 1
                if attempt == 0 { adoptCurrentMap(router: index, &state) }
                continue
            } catch {
                return
            }
            let wall = clock.wallMillis
            let proposed = state.routers[index].clock.next(wallMillis: wall - min(wall, state.routers[index].skewMillis))
            let write = ClientWrite(
                table: op.table, pk: op.pk, shardKey: op.pk, body: op.body, proposedVersion: proposed, generation: map.generation)
            do {
                if let version = try store.clientWrite(write).version {
                    state.routers[index].clock.observe(version)
                    state.acked[key] = Acked(version: version, body: op.body, hash: KeyHash.of(op.pk))
                    state.recentlyAcked.insert(key)
                    state.acks &+= 1
                    state.coverage.ackedWrites += 1
                    let row = StoredRow(table: op.table, pk: op.pk, shardKey: op.pk, version: version, body: op.body)
                    writeSecond(row, owner: map.owner(of: row.hash), router: index, at: map.generation, &state)
                }
                return
            } catch let error as StoreError where error.fenceGeneration != nil {
                state.coverage.fencedWrites += 1
                if attempt == 0 { adoptCurrentMap(router: index, &state) }
            } catch {
                return
            }
        }
    }

    /// `dual_write`'s second write, as `ShardRouter.writeSecond` makes it: to the new owner of a
    /// moving range the write's old owner took, at the same version. One in eight fails (the new
    /// owner unreachable) and is queued for the migrator to retry; one in eighty cannot be queued
    /// either, leaving the changelog to carry it.
    func writeSecond(_ row: StoredRow, owner: ShardID, router index: Int, at generation: UInt64, _ state: inout State) {
        guard let routes = state.routers[index].routes, let move = routes.moving(row.hash, at: generation), move.source == owner,
            let target = stores[move.target]
        else { return }
        if routes.routes.writes == .record {
            record(row, for: move, migration: routes.migration, at: generation, &state)
            return
        }
        guard routes.routes.writes == .dual else { return }
        let fails = state.random.next() % 8 == 0
        do {
            if fails { throw StoreError.backend("injected: the new owner is unreachable") }
            _ = try target.clientWriteSecond(row, routedBy: generation)
            state.coverage.secondWrites += 1
        } catch let error as StoreError where error.fenceGeneration != nil {
            // The copies are fenced: a rollback, nothing to carry.
        } catch {
            state.coverage.failedSecondWrites += 1
            guard state.random.next() % 10 != 0 else { return }
            let log = MigrationLogID(migration: ChangeStreamID(migration: routes.migration), kind: .retry)
            let entry = try? LoggedWrite(row, target: move.target, generation: generation).encoded()
            if let entry, (try? metadata.clientAppendToLog(log, [entry], limit: SecondWrites.queueLimit)) != nil {
                state.coverage.queuedSecondWrites += 1
            }
        }
    }

    /// The copy before a write of the strategies that switch first, as `ShardRouter.copyFirst`
    /// makes it: a key the new owner has never seen gets the old owner's row first.
    func copyFirst(_ key: Key, owner: ShardID, router index: Int, at generation: UInt64, _ state: inout State) throws {
        guard let routes = state.routers[index].routes, routes.routes.writes == .copyFirst,
            let move = routes.switched(KeyHash.of(key.pk), owner: owner), let target = stores[owner],
            target.row(table: key.table, pk: key.pk) == nil, let old = stores[move.source]?.row(table: key.table, pk: key.pk)
        else { return }
        if try target.clientWriteSecond(old, routedBy: generation) { state.coverage.copiedRows += 1 }
    }

    /// `traffic_replay`'s record of a write, as `ShardRouter` makes it: appended to the replay log.
    /// One in forty cannot be recorded (the metadata unreachable), leaving the changelog to carry it.
    private func record(_ row: StoredRow, for move: Move, migration: String, at generation: UInt64, _ state: inout State) {
        let log = MigrationLogID(migration: ChangeStreamID(migration: migration), kind: .replay)
        guard state.random.next() % 40 != 0, let entry = try? LoggedWrite(row, target: move.target, generation: generation).encoded(),
            (try? metadata.clientAppendToLog(log, [entry], limit: SecondWrites.recordLimit)) != nil
        else { return }
        state.coverage.recordedWrites += 1
    }

    /// A read must never return less than the latest acknowledged write. A fence above the
    /// router's generation sends it to the metadata first.
    func read(_ key: Key, router index: Int, _ state: inout State) {
        let hash = KeyHash.of(key.pk)
        var map = state.routers[index].map
        if let fence = stores[map.owner(of: hash)]?.fence(over: hash), fence > map.generation, metadata.current != nil {
            adoptCurrentMap(router: index, &state)
            map = state.routers[index].map
        }
        if let routes = state.routers[index].routes, routes.shadowPercent > 0, let move = routes.moving(hash, at: map.generation) {
            shadowRead(key, move: move, &state)
        }
        var row = (try? stores[map.owner(of: hash)]?.clientRead(table: key.table, pk: key.pk, shardKey: key.pk).value) ?? nil
        // As `ServedReads.pick`: a served read takes the new owner's answer alone.
        let servePercent = state.servedSentBackEpoch == nil ? state.routers[index].routes?.serve?.percent : nil
        let served = servePercent.map { Double(state.random.next() % 100) < $0 } ?? false
        if served, let routes = state.routers[index].routes, routes.switched(hash, owner: map.owner(of: hash)) != nil {
            state.coverage.servedReads += 1
        } else if let routes = state.routers[index].routes, routes.routes.writes == .copyFirst,
            let move = routes.switched(hash, owner: map.owner(of: hash)), routes.routes.reads != .fallback || row == nil,
            let old = stores[move.source]?.row(table: key.table, pk: key.pk), old.version > row?.version ?? 0
        {
            // As `ShardRouter.redirectedRead`: the newer of both, or the old owner's on a miss,
            // copied on access.
            state.coverage.oldOwnerReads += 1
            if routes.routes.reads == .fallback, (try? stores[move.target]?.clientWriteSecond(old, routedBy: map.generation)) == true {
                state.coverage.copiedRows += 1
            }
            row = old
        }
        state.coverage.reads += 1
        if let problem = Self.problem(row, against: state.acked[key]) {
            state.violation =
                state.violation ?? "read of \(key.table)/\(key.pk) via router \(index) at generation \(map.generation): \(problem)"
        }
    }

    /// New owner first, old owner second, as the router does: the new owner may be behind, never
    /// ahead. A mismatch is a violation, except on the row planted to be found.
    private func shadowRead(_ key: Key, move: Move, _ state: inout State) {
        let target = try? stores[move.target]?.clientRead(table: key.table, pk: key.pk, shardKey: key.pk).value
        let source = try? stores[move.source]?.clientRead(table: key.table, pk: key.pk, shardKey: key.pk).value
        let now = clock.wallMillis
        let outcome = ShadowRead.classify(source: source ?? nil, target: target ?? nil, nowMillis: now, lagAllowanceMillis: 1 << 40)
        state.coverage.shadowReads += 1
        guard outcome.isMismatch else { return }
        guard state.planted == key else {
            state.violation = state.violation ?? "shadow read of \(key.table)/\(key.pk) on \(move.target): \(outcome.name)"
            return
        }
        state.coverage.mismatches += 1
        state.shadow.mismatches += 1
        state.shadow.recent.append(
            ShadowReads.Comparison(
                table: key.table, pk: key.pk, sourceVersion: (source ?? nil)?.version, targetVersion: (target ?? nil)?.version,
                outcome: outcome, at: now))
    }

    /// What is wrong with `row` given the last acknowledged write, if anything.
    static func problem(_ row: StoredRow?, against acked: Acked?) -> String? {
        guard let acked else { return nil }
        // A purged tombstone reads as absent, as it does to clients.
        if row == nil && acked.body == nil { return nil }
        guard let row, row.version >= acked.version else {
            return "saw version \(row?.version ?? 0), acknowledged \(acked.version) (lost write)"
        }
        if row.version == acked.version && row.body != acked.body {
            return "version \(row.version) holds \(row.body ?? "a tombstone"), acknowledged \(acked.body ?? "a delete")"
        }
        return nil
    }

    // MARK: Routers following the directive

    /// Router `index` puts the directive in force: holds what a cutover holds, the routes.
    func follow(router index: Int) {
        state.withLock { follow(index, &$0) }
    }

    func follow(_ index: Int, _ state: inout State) {
        if let hold = state.directive.hold, hold.generation > state.routers[index].map.generation {
            state.routers[index].held = hold.ranges
        } else if !state.routers[index].held.isEmpty {
            release(index, &state)
        }
        state.routers[index].routes = state.directive.routes
        if let epoch = state.servedSentBackEpoch, let routes = state.directive.routes, routes.epoch > epoch {
            state.servedSentBackEpoch = nil
            state.served.sentBack = nil
            state.served.sentBackAt = nil
        }
    }

    /// Clients read a few keys of the moving ranges through router 0 (the migrator's runner
    /// waits out a read step at once in simulated time, so reads meant for a step are read in it).
    func readMovingKeys(_ plan: MigrationPlan) {
        state.withLock { state in
            let readable = (keys + coldKeys).filter { plan.move(containing: KeyHash.of($0)) != nil }
            guard !readable.isEmpty else { return }
            for _ in 0..<4 {
                let table = tables[Int(state.random.next() % UInt64(tables.count))]
                read(Key(table: table, pk: readable[Int(state.random.next() % UInt64(readable.count))]), router: 0, &state)
            }
        }
    }

    /// A router sends its served reads back (as `ServedReads` does when the new owners fail or
    /// slow down): from then on reads take the old path until a new epoch.
    func sendServedReadsBack() {
        state.withLock { state in
            guard state.servedSentBackEpoch == nil, state.coverage.readsSentBack == 0, let routes = state.directive.routes,
                routes.serve != nil
            else { return }
            state.servedSentBackEpoch = routes.epoch
            state.served.sentBack = "planted by the simulation"
            state.served.sentBackAt = clock.wallMillis
            state.coverage.readsSentBack += 1
        }
    }

    /// Router `index` adopts the current map after a fence, and the directive with it, as
    /// `ShardRouter.refreshShardMap` does.
    func adoptCurrentMap(router index: Int, _ state: inout State) {
        guard let current = metadata.current, current.generation > state.routers[index].map.generation else { return }
        state.routers[index].map = current
        follow(index, &state)
    }

    /// Router `index` lets its held writes go, to the owners of its current map.
    func release(_ index: Int, _ state: inout State) {
        state.routers[index].held = []
        let parked = state.routers[index].parked
        state.routers[index].parked = []
        for op in parked { execute(op, router: index, &state) }
    }

    /// Router 1's safety net: a periodic re-read of the map and the directive.
    func rereadMetadata(router index: Int) {
        state.withLock { state in
            if let current = metadata.current, current.generation > state.routers[index].map.generation {
                state.routers[index].map = current
            }
            follow(index, &state)
        }
    }
}
