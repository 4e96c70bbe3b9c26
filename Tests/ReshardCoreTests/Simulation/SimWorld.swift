@testable import ReshardCore

/// A router of the simulation: a possibly stale shard map, its own clock, and the writes it
/// holds while a cutover is under way.
struct SimRouter {
    var map: ShardMap
    var clock = HybridLogicalClock()
    var held: [HashRange] = []
    var parked: [SimWorld.Op] = []
    /// Whether map and hold notices reach this router; one that misses them learns only when a
    /// shard refuses it.
    var hearsNotices: Bool
}

/// Routers, shards, clients and one migrator in one deterministic world.
struct SimWorld {
    struct Op: Hashable {
        let table: TableName
        let pk: String
        let body: String?
    }

    struct Acked {
        let version: UInt64
        let deleted: Bool
    }

    struct Violation: Error, CustomStringConvertible {
        let description: String
    }

    var random: SeededRandom
    var now: UInt64 = 1_700_000_000_000
    var shards: [ShardID: SimShard]
    var metadata: ShardMap
    var routers: [SimRouter]
    var acked: [SimShard.Key: Acked] = [:]
    var lastVersions: [ShardID: [SimShard.Key: UInt64]] = [:]
    /// Coverage counters, so a test can tell the simulation exercised what it claims to.
    var ackedWrites = 0
    var fencedWrites = 0
    var reads = 0
    var shadowReads = 0
    /// The plan whose moving ranges are shadow-read from their new owners (the canary), if any.
    var canary: MigrationPlan?
    let tables = [TableName("t")!, TableName("u")!]
    let keys: [String]

    init(seed: UInt64, shardIDs: [ShardID], map: ShardMap, keyCount: Int) {
        random = SeededRandom(seed: seed)
        shards = Dictionary(uniqueKeysWithValues: shardIDs.map { ($0, SimShard()) })
        metadata = map
        routers = [SimRouter(map: map, hearsNotices: true), SimRouter(map: map, hearsNotices: false)]
        keys = (0..<keyCount).map { "k\($0)" }
    }

    // MARK: Clients

    /// One client operation through router `index`: a write, a delete or a read-your-writes check.
    mutating func clientStep(router index: Int) throws {
        let table = tables[Int(random.next() % UInt64(tables.count))]
        let pk = keys[Int(random.next() % UInt64(keys.count))]
        switch random.next() % 10 {
        case 0...4: submit(Op(table: table, pk: pk, body: "{\"n\":\(random.next() % 1000)}"), router: index)
        case 5...6: submit(Op(table: table, pk: pk, body: nil), router: index)
        default: try read(table: table, pk: pk, router: index)
        }
    }

    mutating func submit(_ op: Op, router index: Int) {
        let hash = KeyHash.of(op.pk)
        if routers[index].held.contains(where: { $0.contains(hash) }) {
            routers[index].parked.append(op)
        } else {
            execute(op, router: index)
        }
    }

    /// Routes and writes; a fenced write re-reads the map once. Only a write a shard took counts
    /// as acknowledged.
    mutating func execute(_ op: Op, router index: Int) {
        for attempt in 0..<2 {
            let map = routers[index].map
            let owner = map.owner(of: KeyHash.of(op.pk))
            let proposed = routers[index].clock.next(wallMillis: now)
            let write = ClientWrite(
                table: op.table, pk: op.pk, shardKey: op.pk, body: op.body, proposedVersion: proposed, generation: map.generation)
            switch shards[owner]?.write(write, now: now) {
            case .success(.written(let version)):
                routers[index].clock.observe(version)
                acked[SimShard.Key(table: op.table, pk: op.pk)] = Acked(version: version, deleted: op.body == nil)
                ackedWrites += 1
                return
            case .success(.notFound), .none:
                return
            case .failure:
                fencedWrites += 1
                if attempt == 0 { routers[index].map = metadata }
            }
        }
    }

    /// A read must never return less than the latest acknowledged write. A shard that carries a
    /// fence above the router's generation sends it to the metadata: after the switch it reads
    /// the new owner; inside the cutover window the old owner is still the one to read.
    mutating func read(table: TableName, pk: String, router index: Int) throws {
        let hash = KeyHash.of(pk)
        var map = routers[index].map
        if let fence = shards[map.owner(of: hash)]?.fence(over: hash), fence > map.generation {
            routers[index].map = metadata
            map = metadata
        }
        let key = SimShard.Key(table: table, pk: pk)
        if let plan = canary, let move = plan.move(containing: hash), map.generation < plan.target.generation {
            // New owner first, old owner second, as the router does: whatever the interleaving, the
            // new owner may be behind but never ahead, never holding a row the old one lacks.
            let outcome = ShadowRead.classify(
                source: shards[move.source]?.rows[key], target: shards[move.target]?.rows[key], nowMillis: now,
                lagAllowanceMillis: 1 << 40)
            if case .mismatch(let kind) = outcome {
                throw Violation(description: "shadow read of \(table)/\(pk) on \(move.target): \(kind.rawValue)")
            }
            shadowReads += 1
        }
        let row = shards[map.owner(of: hash)]?.rows[key]
        reads += 1
        try check(row, against: acked[key], what: "read of \(table)/\(pk) via router \(index) at generation \(map.generation)")
    }

    func check(_ row: StoredRow?, against acked: Acked?, what: String) throws {
        guard let acked else { return }
        // A purged tombstone reads as absent, as it does to clients; an older copy arriving
        // later would show up as a live row below the acknowledged version and fail below.
        if row == nil && acked.deleted { return }
        guard let row, row.version >= acked.version else {
            throw Violation(description: "\(what): saw version \(row?.version ?? 0), acknowledged \(acked.version) (lost write)")
        }
        if row.version == acked.version && row.isDeleted != acked.deleted {
            throw Violation(description: "\(what): version \(row.version) deleted=\(row.isDeleted), acknowledged deleted=\(acked.deleted)")
        }
    }

    // MARK: Routers

    mutating func hold(_ ranges: [HashRange]) {
        for index in routers.indices where routers[index].hearsNotices { routers[index].held = ranges }
    }

    mutating func release() {
        for index in routers.indices {
            routers[index].held = []
            if routers[index].hearsNotices { routers[index].map = metadata }
            let parked = routers[index].parked
            routers[index].parked = []
            for op in parked { execute(op, router: index) }
        }
    }

    mutating func publish(_ map: ShardMap) {
        if metadata.generation < map.generation { metadata = map }
        for index in routers.indices where routers[index].hearsNotices { routers[index].map = metadata }
    }

    /// The process died: holds and parked writes are gone (their clients saw an error), and
    /// every router starts from the metadata.
    mutating func crashRouters() {
        for index in routers.indices {
            routers[index].held = []
            routers[index].parked = []
            routers[index].map = metadata
        }
    }

    // MARK: Invariants

    /// DESIGN.md's invariants that can be checked from outside, after every step.
    mutating func checkInvariants() throws {
        for (key, ack) in acked {
            let owner = metadata.owner(of: KeyHash.of(key.pk))
            try check(shards[owner]?.rows[key], against: ack, what: "\(key.table)/\(key.pk) on its owner \(owner)")
        }
        for (id, shard) in shards {
            var last = lastVersions[id] ?? [:]
            for (key, row) in shard.rows {
                if let previous = last[key], row.version < previous {
                    throw Violation(description: "\(id) replaced \(key.pk) v\(previous) with older v\(row.version)")
                }
                last[key] = row.version
            }
            for key in last.keys where shard.rows[key] == nil { last[key] = nil }
            lastVersions[id] = last
        }
        for router in routers where router.map.generation < metadata.generation {
            for pk in keys {
                let hash = KeyHash.of(pk)
                let stale = router.map.owner(of: hash)
                guard stale != metadata.owner(of: hash) else { continue }
                guard let fence = shards[stale]?.fence(over: hash), fence > router.map.generation else {
                    throw Violation(description: "\(stale) would accept a write to \(pk) at stale generation \(router.map.generation)")
                }
            }
        }
    }
}
