// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Reshard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "reshard", targets: ["reshard"]),
        .library(name: "ReshardCore", targets: ["ReshardCore"]),
        .library(name: "ReshardStore", targets: ["ReshardStore"]),
        .library(name: "ReshardEngine", targets: ["ReshardEngine"]),
        .library(name: "ReshardServer", targets: ["ReshardServer"]),
        .library(name: "ReshardAPI", targets: ["ReshardAPI"]),
        .library(name: "ReshardClient", targets: ["ReshardClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
        // Already in the graph through Hummingbird: the client library and TLS add no package.
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
    ],
    targets: [
        // Pure model: no I/O, no clocks read, no Foundation networking.
        .target(name: "ReshardCore", swiftSettings: strict),
        // The API's JSON bodies, shared by the server and its clients; depends on no other target.
        .target(name: "ReshardAPI", swiftSettings: strict),
        .target(
            name: "ReshardStore",
            dependencies: [
                "ReshardCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ReshardEngine",
            dependencies: [
                "ReshardCore", "ReshardStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ReshardServer",
            dependencies: [
                "ReshardEngine", "ReshardStore", "ReshardCore", "ReshardAPI", "ReshardClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Test scaffolding shared by every test target and the benchmarks: a manual clock,
        // the shard backends, scratch clusters and databases, the ledger of acknowledged
        // writes. Never linked into the product.
        .target(
            name: "ReshardTestKit",
            dependencies: [
                "ReshardCore", "ReshardStore", "ReshardEngine",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        // The client library applications link: typed rows, conditions, batches, pages,
        // retries, the admin API; and the one-connection HTTP/1.1 client of the load generators.
        .target(
            name: "ReshardClient",
            dependencies: [
                "ReshardAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "reshard",
            dependencies: [
                "ReshardServer", "ReshardClient", "ReshardAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The demo's latency figures.
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The README's quick start, built by every `swift build` so that it keeps compiling
        // (a test checks that the README shows this very file).
        .executableTarget(name: "reshard-quickstart", dependencies: ["ReshardClient"], path: "Examples/QuickStart", swiftSettings: strict),
        // The benchmarks, a program of their own: the shipped `reshard` links none of their
        // code, the test kit's scratch clusters or the baselines' dependencies.
        .executableTarget(
            name: "reshard-bench",
            dependencies: [
                "ReshardServer", "ReshardClient", "ReshardTestKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The SQLite raw-copy baseline of `reshard-bench copy`.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                // The bare route `reshard-bench router` compares the router with.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReshardClientTests",
            dependencies: [
                "ReshardClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ReshardCoreTests", dependencies: ["ReshardCore"], swiftSettings: strict),
        .testTarget(name: "ReshardCommandTests", dependencies: ["reshard", "ReshardAPI"], swiftSettings: strict),
        // The benchmark's arithmetic (how samples are filed and figures formed), not its timings.
        .testTarget(name: "ReshardBenchTests", dependencies: ["reshard-bench"], swiftSettings: strict),
        .testTarget(
            name: "ReshardStoreTests",
            dependencies: [
                "ReshardStore", "ReshardTestKit", .product(name: "Logging", package: "swift-log"),
                // To make a shard file as an older Reshard left it.
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReshardEngineTests",
            dependencies: [
                "ReshardEngine", "ReshardTestKit",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReshardServerTests",
            dependencies: [
                "ReshardServer", "ReshardClient", "ReshardTestKit", "ReshardAPI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
    ]
)
