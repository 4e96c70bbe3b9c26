import ReshardCore
import ReshardEngine
import ReshardTestKit
import Testing

/// The client load the in-process migration tests run on table `kv`, and the check after it.
enum MigrationLoad {
    /// `writers` writers put (and read back) or delete (one in five) random keys `k0…k(keys-1)`
    /// until `stop` answers true (asked every `checkEvery` steps) or `steps` run out. Bounded
    /// 503s and not-found answers are expected; anything else fails the load.
    static func write(
        router: ShardRouter, ledger: Ledger, writers: Int, keys: Int, seed: UInt64, steps: Int, checkEvery: Int,
        stop: @escaping @Sendable () async -> Bool
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var random = SeededRandom(seed: seed + UInt64(writer))
                    for step in 0..<steps {
                        if step % checkEvery == 0, await stop() { break }
                        let pk = "k\(Int(random.next() % UInt64(keys)))"
                        do {
                            if random.next() % 5 == 0 {
                                let receipt = try await router.delete(table: "kv", pk: pk, shardKey: nil)
                                ledger.acknowledge(pk, version: receipt.version, deleted: true)
                            } else {
                                let body = Array("{\"w\":\(writer),\"s\":\(step)}".utf8)
                                let receipt = try await router.put(table: "kv", pk: pk, body: body)
                                ledger.acknowledge(pk, version: receipt.version, deleted: false, body: body)
                                let read = try await router.get(table: "kv", pk: pk, shardKey: nil)
                                if read.version < receipt.version {
                                    ledger.violation("\(pk): read v\(read.version) after own write v\(receipt.version)")
                                }
                            }
                        } catch let error as RouterError where error.code == "not_found" || error.code == "range_moving" {
                            continue  // a delete of an absent row, a read of a deleted one, or a bounded 503
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Creates table `kv` with rows k0…k999 (acknowledged in `ledger`), registers an empty s4,
    /// and plans adding it.
    static func prepareAddShard(_ fixture: RouterFixture, ledger: Ledger) async throws -> MigrationPlan {
        let router = fixture.router
        _ = try await router.createTable(name: "kv", primaryKey: "k", shardKey: "k")
        for i in 0..<1_000 {
            let body = Array("{\"v\":0}".utf8)
            let receipt = try await router.put(table: "kv", pk: "k\(i)", body: body)
            ledger.acknowledge(receipt.pk, version: receipt.version, deleted: false, body: body)
        }
        try await fixture.addShard("s4")
        let registered = Set((try await fixture.metadata.shards()).map(\.id))
        return try MigrationPlanner.plan(.addShard(try #require(ShardID("s4"))), current: router.shardMap, registered: registered)
    }

    /// Every acknowledged write and delete is what the router reads now, byte for byte; at least
    /// `atLeast` keys were acknowledged, so the check cannot pass on an idle load.
    static func checkLedger(_ ledger: Ledger, router: ShardRouter, atLeast: Int = 1) async throws {
        #expect(ledger.violations.isEmpty, "\(ledger.violations.prefix(5))")
        let report = try await ledger.check { pk in
            do {
                let row = try await router.get(table: "kv", pk: pk, shardKey: nil)
                return Ledger.Read(version: row.version, body: Array(row.body.utf8))
            } catch let error as RouterError where error.code == "not_found" {
                return nil
            }
        }
        #expect(report.checked >= atLeast)
        #expect(report.isClean, "\(report)")
    }
}
