import ArgumentParser

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "placeholder")
    func run() async throws {}
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "placeholder")
    func run() async throws {}
}
