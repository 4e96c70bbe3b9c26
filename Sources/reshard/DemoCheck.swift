import Foundation
import ReshardCore
import ReshardEngine
import ReshardStore

/// Loads the demo's rows through the router (in-process: the load is set-up, not the subject).
struct DemoLoader: Sendable {
    let router: ShardRouter
    let rows: Int

    /// Writes rows `a0 … a(rows-1)` and returns the version each was acknowledged with.
    func load() async throws -> [UInt64] {
        let tasks = 8
        let perTask = (rows + tasks - 1) / tasks
        let display = ProgressDisplay()
        let done = try await withThrowingTaskGroup(of: (Int, [UInt64]).self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var versions: [UInt64] = []
                    for index in stride(from: task * perTask, to: min(rows, (task + 1) * perTask), by: 1) {
                        let receipt = try await router.put(
                            table: DemoRun.tableName, pk: DemoWorkload.key(index), body: DemoWorkload.body(index, client: -1, step: 0))
                        versions.append(receipt.version)
                        if task == 0, versions.count % 2_000 == 0, display.isTerminal {
                            display.update(String(format: "loading %.0f %%", Double(versions.count) / Double(perTask) * 100))
                        }
                    }
                    return (task, versions)
                }
            }
            var slices = [[UInt64]](repeating: [], count: tasks)
            for try await (task, versions) in group { slices[task] = versions }
            return slices.flatMap { $0 }
        }
        if display.isTerminal { display.finish("") }
        return done
    }
}

/// Reads back every key the demo has an expectation for and checks where every row lives.
struct DemoCheck: Sendable {
    let router: ShardRouter
    /// The version each preloaded row was acknowledged with, by key index.
    let loaded: [UInt64]
    let clients: [DemoWorkload.ClientResult]

    struct Result: Sendable, Codable {
        /// Keys with an acknowledged write or delete, all read back.
        var keysChecked = 0
        /// An acknowledged write that reads as absent or older.
        var lost = 0
        /// An acknowledged delete that reads as a live row.
        var resurrected = 0
        /// A row newer than anything acknowledged for it (only possible for ambiguous writes).
        var unexpected = 0
        /// Keys whose last write failed in transport and may or may not have applied.
        var ambiguous = 0
        /// Rows (tombstones included) on a shard the final map does not name for them.
        var misplaced = 0
        /// Live rows per shard after the migration.
        var liveRowsPerShard: [String: Int] = [:]
        /// A few examples of what went wrong.
        var examples: [String] = []
    }

    func run() async throws -> Result {
        var wanted: [Int: (version: UInt64, deleted: Bool)] = [:]
        for (index, version) in loaded.enumerated() { wanted[index] = (version, false) }
        var unsure = Set<Int>()
        for client in clients {
            for (index, ack) in client.acknowledged { wanted[index] = ack }
            unsure.formUnion(client.ambiguous)
        }
        let (expected, ambiguous) = (wanted, unsure)
        var result = Result()
        result.keysChecked = expected.count
        result.ambiguous = ambiguous.count
        let keys = Array(expected.keys)
        let partial = try await withThrowingTaskGroup(of: Result.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var part = Result()
                    for offset in stride(from: task, to: keys.count, by: 8) {
                        let index = keys[offset]
                        guard let want = expected[index] else { continue }
                        try await self.check(index, want: want, ambiguous: ambiguous.contains(index), into: &part)
                    }
                    return part
                }
            }
            var merged = Result()
            for try await part in group {
                merged.lost += part.lost
                merged.resurrected += part.resurrected
                merged.unexpected += part.unexpected
                merged.examples += part.examples.prefix(5 - min(5, merged.examples.count))
            }
            return merged
        }
        result.lost = partial.lost
        result.resurrected = partial.resurrected
        result.unexpected = partial.unexpected
        result.examples = partial.examples
        try await checkPlacement(into: &result)
        return result
    }

    private func check(_ index: Int, want: (version: UInt64, deleted: Bool), ambiguous: Bool, into result: inout Result) async throws {
        let key = DemoWorkload.key(index)
        let found: UInt64?
        do {
            found = try await router.get(table: DemoRun.tableName, pk: key, shardKey: nil).version
        } catch let error as RouterError where error.code == "not_found" {
            found = nil
        }
        switch (want.deleted, found) {
        case (true, nil): return
        case (true, let version?) where ambiguous && version > want.version: return
        case (true, let version?):
            result.resurrected += 1
            result.examples.append("\(key): deleted at v\(want.version), reads live v\(version)")
        case (false, nil) where ambiguous: return  // a later delete may have applied
        case (false, nil):
            result.lost += 1
            result.examples.append("\(key): written at v\(want.version), reads absent")
        case (false, let version?) where version == want.version || (ambiguous && version > want.version): return
        case (false, let version?) where version < want.version:
            result.lost += 1
            result.examples.append("\(key): written at v\(want.version), reads v\(version)")
        case (false, let version?):
            result.unexpected += 1
            result.examples.append("\(key): written at v\(want.version), reads newer v\(version) nobody acknowledged")
        }
    }

    private func checkPlacement(into result: inout Result) async throws {
        let map = router.shardMap
        let name = try DemoRun.table
        let definition = try router.tables.first { $0.name == name }.orThrow("table")
        for id in router.registeredShards {
            guard let store = router.store(id) else { continue }
            var live = 0
            var misplaced: [String] = []
            try await store.forEachChunk(table: definition.storage) { rows in
                for row in rows {
                    if !row.isDeleted { live += 1 }
                    if map.owner(of: row.hash) != id { misplaced.append("\(row.pk) is on \(id), the map names \(map.owner(of: row.hash))") }
                    // After a shard-key change, a live row sits under the key its body names.
                    if definition.lookup != nil, let body = row.body,
                        (try? StrictJSON.object(Array(body.utf8)).members[definition.shardKey]?.keyText) != row.shardKey
                    {
                        misplaced.append("\(row.pk) is placed under \(row.shardKey), its \(definition.shardKey) says otherwise")
                    }
                }
            }
            result.misplaced += misplaced.count
            result.examples += misplaced.prefix(max(0, 10 - result.examples.count))
            result.liveRowsPerShard[id.rawValue] = live
        }
    }
}
