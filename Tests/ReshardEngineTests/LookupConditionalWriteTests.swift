import ReshardCore
import Testing

@testable import ReshardEngine

/// Conditional writes of a table placed through its primary-key lookup: the condition is read
/// where the entry says the row lives, and the claim's compare-and-set keeps it true at the write.
@Suite struct LookupConditionalWriteTests {
    func body(_ pk: String, _ customer: String, _ n: Int) -> [UInt8] {
        Array("{\"id\":\"\(pk)\",\"customer_id\":\"\(customer)\",\"n\":\(n)}".utf8)
    }

    @Test func ifMatchAndIfNoneMatchHoldAcrossAMoveBetweenShardKeys() async throws {
        let cluster = try await LookupTableTests.cluster()
        let router = cluster.router
        let created = try await router.put(table: "orders", pk: "o1", body: body("o1", "c1", 1), condition: .absent)
        #expect(created.created)
        await #expect(throws: RouterError.preconditionFailed) {
            try await router.put(table: "orders", pk: "o1", body: body("o1", "c1", 2), condition: .absent)
        }
        // A move to another shard key, guarded by the version read.
        let moved = try await router.put(table: "orders", pk: "o1", body: body("o1", "c2", 3), condition: .version(created.version))
        #expect(!moved.created)
        await #expect(throws: RouterError.preconditionFailed) {
            try await router.put(table: "orders", pk: "o1", body: body("o1", "c3", 4), condition: .version(created.version))
        }
        #expect(try await router.get(table: "orders", pk: "o1", shardKey: nil).body.contains("\"n\":3"))
        await #expect(throws: RouterError.preconditionFailed) {
            try await router.delete(table: "orders", pk: "o1", shardKey: nil, condition: .version(created.version))
        }
        _ = try await router.delete(table: "orders", pk: "o1", shardKey: nil, condition: .version(moved.version))
        await #expect(throws: RouterError.preconditionFailed) {
            try await router.put(table: "orders", pk: "o1", body: body("o1", "c1", 5), condition: WriteCondition(ifMatch: .any))
        }
        #expect(try await router.put(table: "orders", pk: "o1", body: body("o1", "c1", 6), condition: .absent).created)
    }

    @Test func concurrentCompareAndSetIncrementsLoseNothing() async throws {
        let cluster = try await LookupTableTests.cluster()
        let router = cluster.router
        _ = try await router.put(table: "orders", pk: "counter", body: body("counter", "c0", 0))
        let successes = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    var done = 0
                    for _ in 0..<400 where done < 5 {
                        let row = try await router.get(table: "orders", pk: "counter", shardKey: nil)
                        let n = Int(row.body.split(separator: ":").last?.dropLast() ?? "") ?? -1
                        do {
                            // Every other writer also moves the row to another shard key.
                            _ = try await router.put(
                                table: "orders", pk: "counter", body: body("counter", "c\(writer % 2 == 0 ? 0 : writer)", n + 1),
                                condition: .version(row.version))
                            done += 1
                        } catch let error as RouterError where error == .preconditionFailed || error.code == "key_contended" {
                            continue
                        }
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(successes == 40)
        #expect(try await router.get(table: "orders", pk: "counter", shardKey: nil).body.hasSuffix("\"n\":40}"))
    }
}
