import HTTPTypes
import Testing

@testable import ReshardServer

@Suite struct HTTPFieldNameTests {
    /// Every name is its own, not the fallback: the failable initializer took each.
    @Test func everyNameIsAValidToken() {
        let names = HTTPField.Name.reshardNames
        #expect(!names.contains(.via))
        #expect(names.map(\.rawName) == ["Reshard-Generation", "Reshard-Layout-Generation", "Last-Event-ID", "X-Accel-Buffering"])
    }
}
