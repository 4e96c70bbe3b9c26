import ArgumentParser

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Reshard's benchmarks; each prints a Markdown table and writes JSON to benchmarks/results/.",
        discussion: """
            Example:
              swift run -c release reshard bench router --connections 1,16,64 --requests 20000
              swift run -c release reshard bench verify --rows 100000
            """,
        subcommands: [RouterBench.self, VerifyBench.self]
    )
}
