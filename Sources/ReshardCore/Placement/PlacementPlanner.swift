/// A placement scheme: turns a set of shards into range assignments that a `ShardMap` validates.
public protocol PlacementPlanner: Sendable {
    /// Ranges tiling the whole space, each owned by one of `shards`.
    func assignments(for shards: [ShardID]) throws -> [RangeAssignment]
}

/// Why a planner could not place the shards.
public struct PlacementError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    /// No shards to place.
    public static let noShards = PlacementError(description: "placement needs at least one shard")
    /// The same shard named twice.
    public static func duplicate(_ shard: ShardID) -> PlacementError {
        PlacementError(description: "shard \(shard) is listed twice")
    }

    static func validate(_ shards: [ShardID]) throws {
        guard !shards.isEmpty else { throw noShards }
        var seen = Set<ShardID>()
        for shard in shards where !seen.insert(shard).inserted { throw duplicate(shard) }
    }
}

extension PlacementPlanner {
    /// A validated shard map of `shards` at `generation`.
    public func shardMap(for shards: [ShardID], generation: UInt64) throws -> ShardMap {
        try ShardMap(generation: generation, assignments: assignments(for: shards))
    }
}
