import ReshardCore
import ReshardEngine
import Synchronization
import Testing

/// The newest acknowledged write of every key (the highest version wins, as on the shards).
final class Ledger: Sendable {
    struct Entry {
        let version: UInt64
        let deleted: Bool
    }
    let entries = Mutex<[String: Entry]>([:])
    let violations = Mutex<[String]>([])

    func acknowledge(_ pk: String, version: UInt64, deleted: Bool) {
        entries.withLock { entries in
            if (entries[pk]?.version ?? 0) < version { entries[pk] = Entry(version: version, deleted: deleted) }
        }
    }

    func violation(_ text: String) { violations.withLock { $0.append(text) } }
}

/// The client load the in-process migration tests run on table `kv`, and the check after it.
enum MigrationLoad {
    /// `writers` writers put (and read back) or delete (one in five) random keys `k0…k(keys-1)`
    /// until `stop` answers true (asked every `checkEvery` steps) or `steps` run out. Bounded
    /// 503s and not-found answers are expected; anything else fails the load.
    static func write(
        router: ShardRouter, ledger: Ledger, writers: Int, keys: Int, seed: UInt64, steps: Int, checkEvery: Int,
        stop: @escaping @Sendable () async -> Bool, acknowledged: @escaping @Sendable () -> Void = {}
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
                                acknowledged()
                            } else {
                                let receipt = try await router.put(table: "kv", pk: pk, body: Array("{\"w\":\(writer),\"s\":\(step)}".utf8))
                                ledger.acknowledge(pk, version: receipt.version, deleted: false)
                                acknowledged()
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
            let receipt = try await router.put(table: "kv", pk: "k\(i)", body: Array("{\"v\":0}".utf8))
            ledger.acknowledge(receipt.pk, version: receipt.version, deleted: false)
        }
        try await fixture.addShard("s4")
        let registered = Set((try await fixture.metadata.shards()).map(\.id))
        return try MigrationPlanner.plan(.addShard(try #require(ShardID("s4"))), current: router.shardMap, registered: registered)
    }

    /// Every acknowledged write and delete is what the router reads now; at least `atLeast` keys
    /// were acknowledged, so the check cannot pass on an idle load.
    static func checkLedger(_ ledger: Ledger, router: ShardRouter, atLeast: Int = 1) async throws {
        let entries = ledger.entries.withLock { $0 }
        #expect(entries.count >= atLeast)
        #expect(ledger.violations.withLock { $0 }.isEmpty, "\(ledger.violations.withLock { $0.prefix(5) })")
        var problems: [String] = []
        for (pk, entry) in entries.sorted(by: { $0.key < $1.key }) {
            do {
                let row = try await router.get(table: "kv", pk: pk, shardKey: nil)
                if entry.deleted || row.version != entry.version {
                    problems.append("\(pk): read v\(row.version), acknowledged v\(entry.version) deleted=\(entry.deleted)")
                }
            } catch let error as RouterError where error.code == "not_found" {
                if !entry.deleted { problems.append("\(pk) lost: acknowledged v\(entry.version)") }
            }
        }
        #expect(problems.isEmpty, "\(problems.count) of \(entries.count) keys differ: \(problems.prefix(5))")
    }
}
