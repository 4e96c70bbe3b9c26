/// Runs `body` for every element of `items`, at most `width` at a time, and returns the
/// results in completion order. The first error cancels the rest and is thrown. Work on many
/// independent keys (each a few round trips to a shard) goes this way, so a batch costs about
/// its slowest `items.count / width` keys instead of the sum of all.
func concurrentMap<Item: Sendable, Result: Sendable>(
    _ items: some Sequence<Item>, width: Int, _ body: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    var next = items.makeIterator()
    return try await withThrowingTaskGroup(of: Result.self) { group in
        for _ in 0..<max(1, width) {
            guard let item = next.next() else { break }
            group.addTask { try await body(item) }
        }
        var results: [Result] = []
        while let result = try await group.next() {
            results.append(result)
            if let item = next.next() { group.addTask { try await body(item) } }
        }
        return results
    }
}
