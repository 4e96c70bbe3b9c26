import ReshardCore
import ReshardStore
import ReshardTestKit

/// DESIGN.md's invariants that can be checked from outside, after every step of a run.
extension SimWorld {
    func checkInvariants() throws {
        guard let map = metadata.current else { throw Violation(description: "no shard map") }
        let rows = stores.mapValues(\.allRows)
        try state.withLock { state in
            if let violation = state.violation { throw Violation(description: violation) }
            // 1, 2, 5: every acknowledged write is on the key's owner, deletes stay deleted.
            for (key, ack) in state.acked {
                let owner = map.owner(of: KeyHash.of(key.pk))
                let row = try? stores[owner]?.clientRead(table: key.table, pk: key.pk, shardKey: key.pk).value
                if let problem = Self.problem(row ?? nil, against: ack) {
                    throw Violation(description: "\(key.table)/\(key.pk) on its owner \(owner): \(problem)")
                }
            }
            // 3: no shard ever replaces a row with an older one.
            for (id, shardRows) in rows {
                var last = state.lastVersions[id] ?? [:]
                var present: Set<Key> = []
                for row in shardRows {
                    let key = Key(table: row.table, pk: row.pk)
                    present.insert(key)
                    if let previous = last[key], row.version < previous {
                        throw Violation(description: "\(id) replaced \(row.table)/\(row.pk) v\(previous) with older v\(row.version)")
                    }
                    last[key] = row.version
                }
                state.lastVersions[id] = last.filter { present.contains($0.key) }
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
        }
    }
}
