import Foundation
import Logging
import Metrics
import ReshardCore
import ReshardStore
import ReshardTestKit
import Synchronization
import Testing

@testable import ReshardEngine

/// A switched-first move's redirect (`routing_first`, `write_new_read_old`) that ends while a
/// read of the new owner is in flight: the mover finished, so the directive drops the old owner,
/// but the read began before the row was copied. The redirect in force when the read began
/// decides, so the old owner's row is still merged and a live row is never answered as missing.
/// Real router, memory stores (which pass the same conformance suite as SQLite and PostgreSQL)
/// whose fault hook ends the redirect at exactly that moment.
@Suite struct RedirectRaceTests {
    @Test(arguments: [RouteModes.redirectedReads, .newestReads])
    func aRedirectEndingDuringTheNewOwnersReadStillMergesTheOldOwner(routes: RouteModes) async throws {
        let (s1, s2) = (ShardID("s1")!, ShardID("s2")!)
        let routerBox = Mutex<ShardRouter?>(nil)
        let armed = Mutex(false)
        // The first read or listing of the new owner after arming ends the redirect before it runs.
        let faults: MemoryShardStore.Faults = { shard, operation in
            guard shard == s2, operation == .read || operation == .rows else { return }
            let fire = armed.withLock { armed in
                defer { armed = false }
                return armed
            }
            guard fire else { return }
            routerBox.withLock { $0 }?.follow(nil)
        }
        let stores = [s1: MemoryShardStore(shardID: s1, faults: faults), s2: MemoryShardStore(shardID: s2, faults: faults)]
        let current = try RingPlacement(virtualNodes: 4).shardMap(for: [s1], generation: 1)
        let made = try await MemoryRouter.make(stores, map: current)
        let (router, metadata) = (made.router, made.metadata)
        routerBox.withLock { $0 = router }
        _ = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        let plan = try MigrationPlanner.plan(.addShard(s2), current: current, registered: [s1, s2], virtualNodes: 4)
        let pk = try #require((0..<1_000).map { "k\($0)" }.first { plan.move(containing: KeyHash.of($0)) != nil })
        _ = try await router.put(table: "kv", pk: pk, body: Array("{\"n\":1}".utf8))

        // The switch came first: the new map names s2, whose copy of the row has not been made.
        try await metadata.publish(plan.target, replacing: current.generation)
        #expect(try await router.refreshShardMap())
        let directive = RouteDirective(
            migration: "m_race", epoch: 0, plan: plan, routes: routes, shadowPercent: 0, lagAllowanceMillis: 0)
        router.follow(RouterDirective(routes: directive))

        armed.withLock { $0 = true }
        // (`try?` so a missing row is recorded and the listing below still runs.)
        let read = try? await router.get(table: "kv", pk: pk, shardKey: nil)
        #expect(read?.body == "{\"n\":1}")
        #expect(!armed.withLock { $0 }, "the read reached the new owner with the redirect in force")

        router.follow(RouterDirective(routes: directive))
        armed.withLock { $0 = true }
        let listed = try await router.list(table: "kv", shardKey: pk, limit: 10).map(\.body)
        #expect(listed == ["{\"n\":1}"])
        #expect(!armed.withLock { $0 })
    }

    /// A listing of a switched-first move whose copy of the row lands on the new owner between
    /// the new owner's list (without it) and the merge's look at the key there (with it, as new
    /// as the old owner's): the row is answered from the new owner, never dropped.
    @Test func aCopyLandingDuringAListingIsListedOnce() async throws {
        let (s1, s2) = (ShardID("s1")!, ShardID("s2")!)
        let armed = Mutex(false)
        let source = Mutex<MemoryShardStore?>(nil)
        let target = Mutex<MemoryShardStore?>(nil)
        let landing = Mutex<(table: TableName, pk: String)?>(nil)
        // The first point read of the new owner after arming finds the copy just made.
        let faults: MemoryShardStore.Faults = { shard, operation in
            guard shard == s2, operation == .read else { return }
            let fire = armed.withLock { armed in
                defer { armed = false }
                return armed
            }
            guard fire, let (table, pk) = landing.withLock({ $0 }), let row = source.withLock({ $0 })?.row(table: table, pk: pk) else {
                return
            }
            target.withLock { $0 }?.plant(row)
        }
        let old = MemoryShardStore(shardID: s1, faults: faults)
        let new = MemoryShardStore(shardID: s2, faults: faults)
        source.withLock { $0 = old }
        target.withLock { $0 = new }
        let stores = [s1: old, s2: new]
        let current = try RingPlacement(virtualNodes: 4).shardMap(for: [s1], generation: 1)
        let made = try await MemoryRouter.make(stores, map: current)
        let (router, metadata) = (made.router, made.metadata)
        let table = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        let plan = try MigrationPlanner.plan(.addShard(s2), current: current, registered: [s1, s2], virtualNodes: 4)
        let pk = try #require((0..<1_000).map { "k\($0)" }.first { plan.move(containing: KeyHash.of($0)) != nil })
        _ = try await router.put(table: "kv", pk: pk, body: Array("{\"n\":1}".utf8))
        landing.withLock { $0 = (table.storage, pk) }

        try await metadata.publish(plan.target, replacing: current.generation)
        #expect(try await router.refreshShardMap())
        let directive = RouteDirective(
            migration: "m_copy_race", epoch: 0, plan: plan, routes: .newestReads, shadowPercent: 0, lagAllowanceMillis: 0)
        router.follow(RouterDirective(routes: directive))

        armed.withLock { $0 = true }
        let listed = try await router.list(table: "kv", shardKey: pk, limit: 10)
        #expect(!armed.withLock { $0 }, "the merge looked the key up on the new owner")
        #expect(listed.map(\.body) == ["{\"n\":1}"] && listed.first?.shard == s2, "\(listed)")
    }
}
