import ArgumentParser
import ReshardAPI

/// The `reshard` command line.
@main
struct Reshard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reshard",
        abstract: "A sharding router and online-migration engine.",
        discussion: """
            Applications read and write rows through the router; Reshard owns the shard map and moves data between shards while traffic continues.

            Example:
              reshard demo
              reshard serve --data ./reshard-data --shards 4
              reshard status --data ./reshard-data
              reshard --generate-completion-script bash > /etc/bash_completion.d/reshard
            """,
        version: BuildInfo.version,
        subcommands: [Demo.self, Serve.self, Status.self, Load.self, Shard.self, Migrate.self]
    )
}
