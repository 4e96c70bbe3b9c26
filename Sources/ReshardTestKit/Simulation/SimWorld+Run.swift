import ReshardCore
import ReshardStore

/// The moves of a run that are not client traffic: setting the stage, the network's whims, a
/// planted corruption, and the end-of-run checks once everyone has healed.
extension SimWorld {
    /// Writes every cold key once, through router 0.
    func writeColdKeys() {
        state.withLock { state in
            for table in tables {
                for pk in coldKeys { execute(Op(table: table, pk: pk, body: "{\"cold\":\"\(pk)\"}"), router: 0, &state) }
            }
        }
    }

    /// The hashes of every live row, for the rebalance planner.
    var liveHashes: [UInt64] { stores.values.flatMap { $0.allRows.filter { !$0.isDeleted }.map(\.hash) } }

    /// Router `index` starts or stops hearing notices.
    func toggleNotices(router index: Int) {
        state.withLock { $0.routers[index].hearsNotices.toggle() }
    }

    /// A held write waited too long: its client got a 503 (not acknowledged).
    func timeOutParkedWrite() {
        state.withLock { state in
            for index in state.routers.indices where !state.routers[index].parked.isEmpty {
                state.routers[index].parked.removeFirst()
                return
            }
        }
    }

    /// Corrupts, once, the new owner's copy of a cold row in a moving range (same version, other
    /// body), as a bug or a bit flip would: the canary's shadow reads must find it, and the
    /// verification after resuming must repair it.
    func plantCorruptCopy(_ plan: MigrationPlan) {
        guard state.withLock({ $0.planted == nil }) else { return }
        for table in tables {
            for pk in coldKeys {
                guard let move = plan.move(containing: KeyHash.of(pk)), let store = stores[move.target],
                    let copy = try? store.clientRead(table: table, pk: pk, shardKey: pk).value, !copy.isDeleted
                else { continue }
                store.plant(StoredRow(table: table, pk: pk, shardKey: pk, version: copy.version, body: "{\"corrupted\":true}"))
                // A client reads it while the canary runs. (A corruption made after verification
                // that nobody reads before the switch is not something a canary can see.)
                state.withLock { state in
                    state.planted = Key(table: table, pk: pk)
                    read(Key(table: table, pk: pk), router: 0, &state)
                }
                return
            }
        }
    }

    /// Heals (every router re-reads the metadata and follows the directive, held writes go) and
    /// requires convergence: the expected map, nothing held or shadow-read any more, every row
    /// of a moving range only on its owner, no stream left open by a migration that ended, and
    /// the invariants once more.
    func checkEnd(plan: MigrationPlan, expected: (map: ShardMap, phase: MigrationPhase), streamsClosed: Bool) async throws {
        let directive = state.withLock { $0.directive }
        if let hold = directive.hold, hold.generation > expected.map.generation {
            throw Violation(description: "the ended migration left writes held until generation \(hold.generation)")
        }
        for index in 0..<2 { rereadMetadata(router: index) }
        state.withLock { state in
            for index in state.routers.indices { release(index, &state) }
        }
        try checkInvariants()
        guard metadata.current == expected.map else {
            throw Violation(description: "map \(metadata.current?.generation ?? 0) is not the expected \(expected.map.generation)")
        }
        for (id, store) in stores {
            for row in store.allRows where plan.move(containing: row.hash) != nil {
                let owner = expected.map.owner(of: row.hash)
                if owner != id { throw Violation(description: "\(row.table)/\(row.pk) left on \(id), its owner is \(owner)") }
            }
            if streamsClosed, !store.openStreams.isEmpty {
                throw Violation(description: "\(id) still has change streams \(store.openStreams.sorted()) open")
            }
        }
        if streamsClosed {
            for kind in MigrationLogID.Kind.allCases {
                let left = try await metadata.logStatus(MigrationLogID(migration: ChangeStreamID(migration: "sim"), kind: kind))
                if left.entries > 0 { throw Violation(description: "the ended migration left \(left.entries) entries in its \(kind) log") }
            }
        }
    }
}
