import HTTPTypes
import Testing

@testable import ReshardServer

@Suite struct HTTPFieldNameTests {
    /// Every name is its own, not the fallback: the failable initializer took each.
    @Test func everyNameIsAValidToken() {
        let names = HTTPField.Name.reshardNames
        #expect(!names.contains(.via))
        #expect(
            names.map(\.rawName) == [
                "Reshard-Generation", "Reshard-Layout-Generation", "Last-Event-ID", "X-Accel-Buffering", "Referrer-Policy",
            ])
    }
}

/// The bound on open event streams: a stream past it is refused, and a closed one frees its place.
@Suite struct EventStreamBoundTests {
    @Test func streamsPastTheLimitAreRefusedUntilOneLeaves() async {
        let streams = EventStreams(limit: 3)
        let entered = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<10 { group.addTask { streams.enter() } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(entered == 3)
        #expect(!streams.enter())
        streams.leave()
        #expect(streams.enter() && !streams.enter())
    }
}
