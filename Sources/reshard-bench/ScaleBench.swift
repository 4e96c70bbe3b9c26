import ArgumentParser
import Foundation
import ReshardCore
import ReshardEngine
import ReshardStore
import ReshardTestKit

/// A scale estimate: what adding one shard to an N-shard, R-row cluster would cost, predicted by
/// `ScaleModel` from figures measured in the same run on this machine (map lookups, its JSON,
/// publishing it through the real metadata store, a router following it, one migration's copy
/// rate and memory).
struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Predict the cost of adding one shard to an N-shard, R-row cluster from rates measured in the same run.",
        discussion: """
            Measures shard-map lookups, building, JSON and publishing (SQLite metadata, and PostgreSQL when at hand) at 10,000 ranges and at the N-shard ring, and one migration's copy rate and peak memory, then predicts rows and bytes moved, sources, change streams, copy time, journal writes and migrator memory for add_shard and for the planner's balanced add. Every assumption is printed with the figures.

            Example:
              swift run -c release reshard-bench scale --shards 1000 --rows 1e9 --backend sqlite
            """
    )

    @OptionGroup var options: BenchOptions

    // Unconditional, so that `--shards -5` reaches the check and its sentence instead of
    // being taken for an unknown flag.
    @Option(parsing: .unconditional, help: "Shards before the add, 1…10,000 (1000 or 1e3).")
    var shards = "1000"

    @Option(parsing: .unconditional, help: "Rows in the cluster, 1…1e12 (1000000000 or 1e9).")
    var rows = "1e9"

    static let maximumShards = 10_000
    static let maximumRows = 1_000_000_000_000

    func validate() throws {
        do throws(ScaleCount.Refusal) {
            _ = try ScaleCount.parse(shards, option: "--shards", maximum: Self.maximumShards)
            _ = try ScaleCount.parse(rows, option: "--rows", maximum: Self.maximumRows)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let shards = try ScaleCount.parse(shards, option: "--shards", maximum: Self.maximumShards)
        let rows = try ScaleCount.parse(rows, option: "--rows", maximum: Self.maximumRows)
        let environment = try BenchEnvironment(choice: options.backend)
        defer { environment.stop() }
        try await Self.measure(environment: environment, shards: shards, rows: rows, quick: options.quick).present(out: options.out)
    }

    /// Ranges of the fixed-size map every run measures, whatever N.
    static let referenceRanges = 10_000

    static func measure(environment: BenchEnvironment, shards: Int, rows: Int, quick: Bool) async throws -> ScaleReport {
        let started = ContinuousClock.now
        // The copy first, while the process holds none of the large maps: its memory is the move's.
        var copies: [ScaleCopy] = []
        for backend in environment.backends {
            copies.append(try await ScaleCopy.measure(backend: backend, servers: environment.servers, rows: quick ? 50_000 : 100_000))
        }
        say("scale: building the maps (\(grouped(referenceRanges)) ranges; the ring of \(grouped(shards)) shards) …")
        let reference = try ScaleMaps.ring(ranges: referenceRanges)
        let ring = try ScaleMaps.subject("ring of \(grouped(shards)) shards", shards: shards)
        let sample = quick ? 200_000 : 1_000_000
        let balanced = try ScaleMaps.balancedAdd(ring.plan.source, sample: sample)
        let (lookups, runs, samples) = (1_000_000, quick ? 3 : 7, 10)

        var metadata: [String: [ScaleMetadata.Figures]] = [:]
        func publishes(_ state: inout ScaleMetadata, _ backend: String) async throws {
            say("scale: publishing through \(backend) metadata …")
            metadata[backend] = [
                try await state.measure("add_shard on \(reference.label)", reference.plan, backend: backend, samples: samples),
                try await state.measure("add_shard (ring)", ring.plan, backend: backend, samples: samples),
                try await state.measure("balanced add", balanced, backend: backend, samples: samples),
            ]
        }
        let registered = max(shards, reference.shards) + 1
        try await ScaleMetadata.withSQLite(shards: registered, first: reference.plan.source) { try await publishes(&$0, "sqlite") }
        if environment.backends.contains(.postgres), let server = environment.servers.first {
            try await ScaleMetadata.withPostgres(server: server, shards: registered, first: reference.plan.source) {
                try await publishes(&$0, "postgres")
            }
        }

        var maps: [ScaleReport.MapFigures] = []
        for subject in [reference, ring] {
            let json = try ScaleMaps.json(subject.plan.source, runs: runs)
            maps.append(
                ScaleReport.MapFigures(
                    label: subject.label, shards: subject.shards, virtualNodes: subject.virtualNodes,
                    ranges: subject.plan.source.assignments.count, buildMillis: subject.buildMillis,
                    lookupNanos: ScaleMaps.lookupNanos(subject.plan.source, count: lookups, runs: runs), lookups: lookups, runs: runs,
                    jsonBytes: json.bytes, encodeMillis: json.encodeMillis, decodeMillis: json.decodeMillis))
        }

        let settings = MigrationSettings()
        let knobs = ScaleModel.Knobs(
            copyParallelism: settings.copyParallelism, chunkRows: settings.chunkRows, bytesPerRange: MemoryLayout<RangeAssignment>.stride)
        var predictions: [ScaleReport.Prediction] = []
        for copy in copies {
            guard let figures = metadata[copy.backend == ShardBackend.sqlite.rawValue ? "sqlite" : "postgres"] else { continue }
            for (name, plan, measured) in [("add_shard (ring)", ring.plan, figures[1]), ("balanced add", balanced, figures[2])] {
                let model = ScaleModel(
                    shards: shards, rows: rows,
                    plan: .init(
                        movedFraction: plan.movedFraction, sources: plan.sources.count, moves: plan.moves.count,
                        rangesBefore: plan.source.assignments.count, rangesAfter: plan.target.assignments.count,
                        planBytes: measured.planBytes, journalBytes: measured.journalBytes),
                    rates: .init(
                        copyRowsPerSecond: copy.rowsPerSecond, bytesPerRow: copy.bytesPerRow, planSaveMillis: measured.planSaveMillis,
                        journalSaveMillis: measured.journalSaveMillis,
                        publishMillis: measured.publishMillis, pickupMillis: measured.pickupMillis),
                    knobs: knobs)
                predictions.append(.init(plan: name, backend: copy.backend, model: model, moveAddedBytes: copy.addedMemoryBytes))
            }
        }
        return ScaleReport(
            date: ISO8601DateFormatter().string(from: Date()), shards: shards, rows: rows, quick: quick, balancedSample: sample, maps: maps,
            metadata: ["sqlite", "postgres"].flatMap { metadata[$0] ?? [] }, copies: copies, predictions: predictions,
            skipped: environment.skipped, seconds: seconds(since: started))
    }
}
