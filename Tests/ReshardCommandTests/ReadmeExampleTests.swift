import Foundation
import Testing

/// The README's Swift quick start is the file every build compiles, character for character.
@Suite struct ReadmeExampleTests {
    @Test func theQuickStartInTheReadmeIsTheExampleThatCompiles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(contentsOf: root.appendingPathComponent("Examples/QuickStart/main.swift"), encoding: .utf8)
        #expect(readme.contains("```swift\n" + example + "```\n"), "README.md must show Examples/QuickStart/main.swift as it is")
        // "A 20-line example": short enough to read at a glance.
        #expect(example.split(separator: "\n", omittingEmptySubsequences: false).count <= 21)
    }
}
