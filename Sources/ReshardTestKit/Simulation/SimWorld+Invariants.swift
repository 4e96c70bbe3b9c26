import ReshardCore
import ReshardStore

/// DESIGN.md's invariants that can be checked from outside, after every step of a run.
extension SimWorld {
    /// Checks every key, or (`everyKey` false, after a lone client operation, which can only
    /// have changed what it wrote) the keys acknowledged since the last full check.
    func checkInvariants(everyKey: Bool = true) throws {
        guard let map = metadata.current else { throw Violation(description: "no shard map") }
        let storeIDs = stores.keys.sorted()
        try state.withLock { state in
            if let violation = state.violation { throw Violation(description: violation) }
            let seen = Checked(
                map: map.generation, routerMaps: state.routers.map(\.map.generation), storeEdits: storeIDs.map { stores[$0]?.edits ?? 0 },
                acked: state.acks)
            if everyKey {
                guard seen != state.checked else { return }
            }
            // 1, 2, 5: every acknowledged write is on the key's owner, deletes stay deleted.
            let checked = everyKey ? Array(state.acked.keys) : Array(state.recentlyAcked)
            if everyKey { state.recentlyAcked = [] }
            // After a switch that came first and before its copy is verified, a key may still be
            // only on the move's old owner: what every router reads then is the newer of both.
            let routes = state.directive.routes.flatMap { $0.routes.writes == .copyFirst ? $0 : nil }
            for key in checked {
                guard let ack = state.acked[key] else { continue }
                let owner = map.owner(of: ack.hash)
                var row = stores[owner]?.row(table: key.table, pk: key.pk)
                if let move = routes?.switched(ack.hash, owner: owner), let old = stores[move.source]?.row(table: key.table, pk: key.pk),
                    old.version > row?.version ?? 0
                {
                    row = old
                }
                if let problem = Self.problem(row, against: ack) {
                    throw Violation(description: "\(key.table)/\(key.pk) on its owner \(owner): \(problem)")
                }
            }
            // 3: no shard ever replaces a row with an older one (each store notes it as it happens).
            for (id, store) in stores {
                if let regression = store.regressions.first { throw Violation(description: "\(id) \(regression)") }
            }
            // 4: a router behind the current map cannot write to a key that moved: its old owner
            // refuses it with a fence.
            for router in state.routers where router.map.generation < map.generation {
                for pk in keys {
                    let hash = KeyHash.of(pk)
                    let stale = router.map.owner(of: hash)
                    guard stale != map.owner(of: hash) else { continue }
                    guard let fence = stores[stale]?.fence(over: hash), fence > router.map.generation else {
                        throw Violation(description: "\(stale) would accept a write to \(pk) at stale generation \(router.map.generation)")
                    }
                }
            }
            if everyKey { state.checked = seen }
        }
    }
}
