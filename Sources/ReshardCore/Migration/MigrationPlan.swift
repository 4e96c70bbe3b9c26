/// What a migration changes.
public enum MigrationKind: Hashable, Sendable, Codable {
    /// A registered, empty shard joins the ring: about 1/(N+1) of the space moves to it.
    case addShard(ShardID)
    /// A shard leaves: its ranges go to the others, then it owns nothing.
    case removeShard(ShardID)
    /// Same shards, ranges re-cut so rows per shard are even (by measured row hashes).
    case rebalance
    /// Same shards, ranges re-cut so the routers' measured load (a mix of signals, rows
    /// perhaps among them) is even per shard, cut on the routers' hash buckets.
    case rebalanceLoad(LoadMix)
    /// One explicit range goes to a named shard.
    case moveRange(HashRange, to: ShardID)
    /// Part of a hot shard's hottest range goes to the coolest shard: the planner's `move`
    /// finding, run (`HotSpotReport`). Moves like `moveRange`; named apart so history says why.
    case splitHotRange(HashRange, from: ShardID, to: ShardID)
    /// Every row of a table is placed again by another field (its new shard key): a ghost layout
    /// is built beside the live one, then the table switches to it alone.
    case changeShardKey(TableName, field: String)

    /// The kind's name in the API: `add_shard`, `remove_shard`, `rebalance` (by rows or by
    /// load), `move_range`, `split_hot_range`, `change_shard_key`.
    public var name: String {
        switch self {
        case .addShard: "add_shard"
        case .removeShard: "remove_shard"
        case .rebalance, .rebalanceLoad: "rebalance"
        case .moveRange: "move_range"
        case .splitHotRange: "split_hot_range"
        case .changeShardKey: "change_shard_key"
        }
    }
}

/// A table's move from one layout to the next (`change_shard_key`).
public struct Relayout: Hashable, Sendable, Codable {
    /// The layout clients use until the switch.
    public let from: TableDefinition
    /// The ghost layout built beside it, which clients use after the switch.
    public let to: TableDefinition

    /// A relayout.
    public init(from: TableDefinition, to: TableDefinition) {
        self.from = from
        self.to = to
    }
}

/// A planned migration: the map before, the map after, and the moves between them.
///
/// A shard-key change (`relayout`) keeps the map: every shard gives its rows of the table and
/// every shard receives some, so its moves are the map's own ranges, each from its owner to
/// itself, and what switches is the table's layout, not the map.
public struct MigrationPlan: Hashable, Sendable, Codable {
    /// What the operator asked for.
    public let kind: MigrationKind
    /// The map in force when the plan was made (generation N).
    public let source: ShardMap
    /// The map to publish at cutover (generation N+1).
    public let target: ShardMap
    /// Every range whose owner changes, sorted.
    public let moves: [Move]
    /// The share of the hash space the ideal migration of this kind would move, for comparison.
    public let idealFraction: Double
    /// The table's layouts, for a shard-key change.
    public let relayout: Relayout?

    /// Phases of the strategy's table this plan never runs. A shard-key change serves no reads
    /// from its new layout before the switch (its only strategy copies and catches up); its
    /// canary shadow-reads the new layout by primary key.
    public var skippedPhases: Set<MigrationPhase> { relayout == nil ? [] : [.servingReads] }

    /// Why this plan cannot run under `strategy` (nil: it can). A shard-key change copies and
    /// catches up: writes stay on the old layout until the switch.
    public func refusal(of strategy: MigrationStrategy) -> String? {
        guard relayout != nil, strategy != .cdcBackfill else { return nil }
        return "strategy: a shard-key change copies and catches up (cdc_backfill); it has no other strategy"
    }

    /// The share of the hash space this plan moves.
    public var movedFraction: Double { moves.reduce(0) { $0 + $1.range.fraction } }

    /// The shards that give data away, sorted.
    public var sources: [ShardID] { Array(Set(moves.map(\.source))).sorted() }
    /// The shards that receive data, sorted.
    public var targets: [ShardID] { Array(Set(moves.map(\.target))).sorted() }

    /// The moving ranges a shard gives away.
    public func ranges(from source: ShardID) -> [HashRange] { moves.filter { $0.source == source }.map(\.range) }
    /// The moving ranges a shard receives.
    public func ranges(to target: ShardID) -> [HashRange] { moves.filter { $0.target == target }.map(\.range) }

    /// The move that covers `hash`, if it is moving.
    public func move(containing hash: UInt64) -> Move? {
        // Moves are sorted and disjoint: binary search like the shard map.
        var low = 0
        var high = moves.count - 1
        while low <= high {
            let mid = (low + high) / 2
            let range = moves[mid].range
            if hash < range.start {
                high = mid - 1
            } else if hash > range.last {
                low = mid + 1
            } else {
                return moves[mid]
            }
        }
        return nil
    }

    /// A plan from its parts; the moves are the diff of the two maps.
    public init(kind: MigrationKind, source: ShardMap, target: ShardMap, idealFraction: Double) {
        self.kind = kind
        self.source = source
        self.target = target
        self.moves = source.diff(to: target)
        self.idealFraction = idealFraction
        self.relayout = nil
    }

    /// A shard-key change of `relayout.from.name` under `map`: every range of the map, from its
    /// owner to itself.
    public init(relayout: Relayout, map: ShardMap) {
        self.kind = .changeShardKey(relayout.from.name, field: relayout.to.shardKey)
        self.source = map
        self.target = map
        self.moves = map.assignments.map { Move(range: $0.range, source: $0.shard, target: $0.shard) }
        self.idealFraction = 1
        self.relayout = relayout
    }

    private enum CodingKeys: String, CodingKey { case kind, source, target, idealFraction, relayout }

    /// Decodes the two maps and recomputes the moves between them (journals that also carry the
    /// moves, as older ones do, decode the same: the moves were always that diff).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let relayout = try container.decodeIfPresent(Relayout.self, forKey: .relayout) {
            self.init(relayout: relayout, map: try container.decode(ShardMap.self, forKey: .source))
            return
        }
        self.init(
            kind: try container.decode(MigrationKind.self, forKey: .kind), source: try container.decode(ShardMap.self, forKey: .source),
            target: try container.decode(ShardMap.self, forKey: .target),
            idealFraction: try container.decode(Double.self, forKey: .idealFraction))
    }

    /// Encodes the kind, the two maps and the ideal fraction, not the moves: they follow from
    /// the maps, and a plan of a ring's hundreds of moves is journaled after every round.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(source, forKey: .source)
        try container.encode(target, forKey: .target)
        try container.encode(idealFraction, forKey: .idealFraction)
        try container.encodeIfPresent(relayout, forKey: .relayout)
    }
}

/// Why a migration cannot be planned.
public struct PlanError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable code for the API.
    public let code: String
    /// What is wrong.
    public let description: String

    static func unknownShard(_ id: ShardID) -> PlanError {
        PlanError(code: "unknown_shard", description: "shard \(id) is not registered")
    }
    static func shardOwnsRanges(_ id: ShardID) -> PlanError {
        PlanError(code: "shard_in_map", description: "shard \(id) already owns ranges; add_shard takes an empty registered shard")
    }
    static func shardNotInMap(_ id: ShardID) -> PlanError {
        PlanError(code: "shard_not_in_map", description: "shard \(id) owns no ranges")
    }
    static let lastShard = PlanError(code: "last_shard", description: "the last shard cannot be removed")
    static let nothingToMove = PlanError(code: "nothing_to_move", description: "the plan moves nothing")
    static let noRows = PlanError(code: "no_rows", description: "rebalance needs rows to measure; the cluster is empty")
    static let noLoad = PlanError(
        code: "no_load_data", description: "a load rebalance needs measured load; the routers have counted none of the signals it weighs")
    static func hotKey(_ finding: HotSpotFinding, rules: HotSpotRules) -> PlanError {
        PlanError(code: "hot_key", description: finding.advice(rules: rules))
    }
    static func alreadyBalanced(_ imbalance: Double, hotFactor: Double) -> PlanError {
        PlanError(
            code: "already_balanced",
            description:
                "the busiest shard carries \((imbalance * 100).rounded() / 100)x the mean load, within \(hotFactor)x; nothing to move")
    }
    static func rangeNotOwned(_ range: HashRange, by shard: ShardID) -> PlanError {
        PlanError(
            code: "range_not_owned", description: "shard \(shard) does not own all of \(range); the map changed since it was measured")
    }
    public static func unknownTable(_ name: TableName) -> PlanError {
        PlanError(code: "unknown_table", description: "table \(name) does not exist")
    }
    static func invalidField(_ field: String) -> PlanError {
        PlanError(
            code: "invalid_shard_key", description: "shard keys are fields named [a-z][a-z0-9_]{0,62}; got \"\(field.prefix(80))\"")
    }
    static func sameShardKey(_ table: TableDefinition) -> PlanError {
        PlanError(code: "same_shard_key", description: "table \(table.name) is already placed by \(table.shardKey)")
    }
    static func notAddressable(_ table: TableDefinition) -> PlanError {
        PlanError(
            code: "shard_key_not_addressable",
            description:
                "table \(table.name) is placed by \(table.shardKey) without a primary-key lookup, so its rows cannot be found by primary key to be placed again; only tables placed by their primary key, or whose shard key was changed before, can change it"
        )
    }
}

/// Turns a migration kind into a plan. Pure: the caller passes the current map, the registered
/// shards and, for rebalance, the hashes of the rows (or a uniform sample of them).
public enum MigrationPlanner {
    /// The plan for `kind` from `current`, publishing `current.generation + 1`. A load
    /// rebalance evens out `loadHistogram` (`LoadMix.histogram`).
    public static func plan(
        _ kind: MigrationKind, current: ShardMap, registered: Set<ShardID>, rowHashes: [UInt64] = [],
        loadHistogram: [UInt16: Double] = [:], virtualNodes: Int = 256
    ) throws(PlanError) -> MigrationPlan {
        let generation = current.generation + 1
        let ring = RingPlacement(virtualNodes: virtualNodes)
        do {
            switch kind {
            case .addShard(let shard):
                guard registered.contains(shard) else { throw PlanError.unknownShard(shard) }
                guard !current.shards.contains(shard) else { throw PlanError.shardOwnsRanges(shard) }
                // Only the arcs the newcomer's own ring points capture move, all of them to it.
                let captured = try ring.assignments(for: current.shards + [shard]).filter { $0.shard == shard }
                let target = try current.painting(captured, generation: generation)
                return try nonEmpty(
                    MigrationPlan(kind: kind, source: current, target: target, idealFraction: 1 / Double(current.shards.count + 1)))
            case .removeShard(let shard):
                guard registered.contains(shard) || current.shards.contains(shard) else { throw PlanError.unknownShard(shard) }
                guard current.shards.contains(shard) else { throw PlanError.shardNotInMap(shard) }
                let others = current.shards.filter { $0 != shard }
                guard !others.isEmpty else { throw PlanError.lastShard }
                let heirs = try ring.shardMap(for: others, generation: generation)
                let overrides = current.ranges(of: shard).flatMap { range in
                    heirs.assignments.compactMap { heir in
                        heir.range.intersection(range).map { RangeAssignment(range: $0, shard: heir.shard) }
                    }
                }
                let target = try current.painting(overrides, generation: generation)
                return try nonEmpty(
                    MigrationPlan(kind: kind, source: current, target: target, idealFraction: current.fraction(ownedBy: shard)))
            case .moveRange(let range, let shard):
                guard registered.contains(shard) else { throw PlanError.unknownShard(shard) }
                let target = try current.painting([RangeAssignment(range: range, shard: shard)], generation: generation)
                return try nonEmpty(MigrationPlan(kind: kind, source: current, target: target, idealFraction: range.fraction))
            case .splitHotRange(let range, let from, let to):
                guard registered.contains(to) else { throw PlanError.unknownShard(to) }
                guard current.ranges(of: from).contains(where: { $0.start <= range.start && range.last <= $0.last }) else {
                    throw PlanError.rangeNotOwned(range, by: from)
                }
                let target = try current.painting([RangeAssignment(range: range, shard: to)], generation: generation)
                return try nonEmpty(MigrationPlan(kind: kind, source: current, target: target, idealFraction: range.fraction))
            case .rebalance:
                return try Rebalancer.plan(current: current, shards: current.shards, rowHashes: rowHashes)
            case .rebalanceLoad:
                // Hysteresis: a cluster within the planner's hot factor is left alone, so a
                // rebalance run again right after one moves nothing back.
                let imbalance = LoadMix.maxOverMean(loadHistogram, map: current)
                let hotFactor = HotSpotRules().hotFactor
                guard loadHistogram.values.contains(where: { $0 > 0 }) else { throw PlanError.noLoad }
                guard imbalance > hotFactor else { throw PlanError.alreadyBalanced(imbalance, hotFactor: hotFactor) }
                return try LoadBalancer.plan(current: current, histogram: loadHistogram, kind: kind)
            case .changeShardKey(let table, _):
                // Planned from the table's definition (`changeShardKey(_:field:current:)`).
                throw PlanError.unknownTable(table)
            }
        } catch let error as PlanError {
            throw error
        } catch {
            // Painting validated maps cannot break tiling; reaching here is a planner bug.
            preconditionFailure("planner produced an invalid map: \(error)")
        }
    }

    /// The plan that places every row of `table` again by `field`, under the current map: a new
    /// layout (storage of its own, and a primary-key lookup unless `field` is the primary key).
    /// Only a table whose rows can be found by primary key can change (placed by it, or with a
    /// lookup), because each change of the live layout is placed again by its primary key.
    public static func changeShardKey(_ table: TableDefinition, field: String, current: ShardMap) throws(PlanError) -> MigrationPlan {
        guard TableDefinition.isValidField(field), let next = table.relaid(by: field) else { throw .invalidField(field) }
        guard field != table.shardKey else { throw .sameShardKey(table) }
        guard table.isShardedByPrimaryKey || table.lookup != nil else { throw .notAddressable(table) }
        return MigrationPlan(relayout: Relayout(from: table, to: next), map: current)
    }

    /// Adds `newcomers` (registered shards that own nothing) so that each takes exactly its
    /// share of the rows, 1/(N+1) for one, from the fullest shards down: no row moves between old
    /// shards, and the largest shrink first.
    public static func balancedAdd(_ newcomers: [ShardID], current: ShardMap, rowHashes: [UInt64]) throws(PlanError) -> MigrationPlan {
        for shard in newcomers where current.shards.contains(shard) { throw PlanError.shardOwnsRanges(shard) }
        return try Rebalancer.plan(current: current, shards: current.shards + newcomers, rowHashes: rowHashes, newcomers: Set(newcomers))
    }

    private static func nonEmpty(_ plan: MigrationPlan) throws(PlanError) -> MigrationPlan {
        guard !plan.moves.isEmpty else { throw .nothingToMove }
        return plan
    }
}
