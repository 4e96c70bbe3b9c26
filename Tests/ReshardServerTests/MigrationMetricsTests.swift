import Foundation
import Hummingbird
import HummingbirdTesting
import ReshardAPI
import Testing

extension HTTPAPITests {
    /// A migration as `/metrics` shows it, scraped while the migration waits at each of its gates:
    /// the phase moves, the rows and bytes copied reach the estimate, replication lag is shown
    /// per old owner, the verification is counted, the cutover leaves one write-hold sample, and
    /// the gauges of the ended migration say done. Every metric the example alerts use is there.
    @Test func metricsFollowAMigrationThroughItsPhases() async throws {
        try await withAPI { client in
            for i in 0..<300 {
                _ = try await client.execute(uri: "/v1/tables/users/rows/u\(i)", method: .put, body: ByteBuffer(string: #"{"n":\#(i)}"#))
            }
            _ = try await client.execute(uri: "/v1/shards", method: .post, headers: auth, body: ByteBuffer(string: #"{"id":"s5"}"#))
            let gates = #"["before_copying","before_verifying","before_cutover","before_cleanup"]"#
            let created = try await client.execute(
                uri: "/v1/migrations", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"kind":"add_shard","shard":"s5","options":{"bake_ms":50,"canary_steps":[],"gates":\#(gates)}}"#)
            )
            #expect(created.status == .accepted)
            let id = try #require(try json(created)["id"] as? String)
            let mine = ["migration": id]
            var scrapes: [Scrape] = []

            // Prepared, waiting to copy: nothing copied yet, the plan's estimate known.
            _ = try await waitForGate("before_copying", of: id, client)
            let prepared = try await scrape(client)
            scrapes.append(prepared)
            #expect(prepared.phase(of: id) == "preparing")
            #expect(prepared.value("reshard_migration_phase", ["migration": id, "kind": "add_shard", "phase": "preparing"]) == 1)
            #expect(prepared.awaitedGate(of: id) == "before_copying")
            #expect(prepared.value("reshard_migration_rows_copied", mine) == 0)
            let rows = try #require(prepared.value("reshard_migration_rows_estimated", mine))
            let bytes = try #require(prepared.value("reshard_migration_bytes_estimated", mine))
            #expect(rows > 0 && rows < 300, "a fifth shard takes a share of the rows")
            #expect(bytes > rows)
            #expect(prepared.value("reshard_build_info", ["version": BuildInfo.version, "swift": BuildInfo.swiftVersion]) == 1)
            #expect(prepared.value("reshard_map_generation", [:]) == 1)
            #expect(prepared.value("reshard_migrator_leader", [:]) == 1)
            #expect(prepared.value("reshard_cutover_write_hold_seconds_count", ["outcome": "switched"]) == 0)

            // Copied and caught up, waiting to verify: every row of the estimate copied, and the
            // old owners' replication lag within the catch-up thresholds.
            #expect(try await client.execute(uri: "/v1/migrations/\(id)/approve", method: .post, headers: auth).status == .ok)
            _ = try await waitForGate("before_verifying", of: id, client)
            let caughtUp = try await scrape(client)
            scrapes.append(caughtUp)
            #expect(caughtUp.phase(of: id) == "catching_up")
            #expect(caughtUp.awaitedGate(of: id) == "before_verifying")
            #expect(caughtUp.value("reshard_migration_rows_copied", mine) == rows)
            #expect(caughtUp.value("reshard_migration_bytes_copied", mine) == bytes)
            let lag = caughtUp.samples.filter { $0.name == "reshard_migration_cdc_lag_changes" && $0.labels["migration"] == id }
            #expect(!lag.isEmpty && lag.allSatisfy { $0.labels["direction"] == "forward" && $0.value <= 100 })
            #expect(caughtUp.value("reshard_migration_throttle_chunk_rows", mine) ?? 0 > 0)

            // Verified, waiting to cut over (no canary asked for): one clean verification.
            #expect(try await client.execute(uri: "/v1/migrations/\(id)/approve", method: .post, headers: auth).status == .ok)
            _ = try await waitForGate("before_cutover", of: id, client)
            let verified = try await scrape(client)
            scrapes.append(verified)
            #expect(verified.phase(of: id) == "verifying")
            #expect(verified.value("reshard_migration_verifications", mine) == 1)
            #expect(verified.value("reshard_migration_rows_repaired", mine) == 0)
            #expect(verified.value("reshard_migration_unresolved_differences", mine) == 0)
            #expect(verified.value("reshard_cutover_write_hold_seconds_count", ["outcome": "switched"]) == 0)

            // Cut over, baked, waiting to clean up: the cutover's write hold is one sample, and
            // this router routes by the new map.
            #expect(try await client.execute(uri: "/v1/migrations/\(id)/approve", method: .post, headers: auth).status == .ok)
            _ = try await waitForGate("before_cleanup", of: id, client)
            let switched = try await scrape(client)
            scrapes.append(switched)
            #expect(switched.phase(of: id) == "baking")
            #expect(switched.value("reshard_migration_cutover_attempts", mine) == 1)
            #expect(switched.value("reshard_cutover_write_hold_seconds_count", ["outcome": "switched"]) == 1)
            #expect(switched.value("reshard_cutover_write_hold_seconds_sum", ["outcome": "switched"]) ?? 0 > 0)
            #expect(switched.value("reshard_cutover_write_hold_seconds_count", ["outcome": "aborted"]) == 0)
            #expect(switched.value("reshard_map_generation", [:]) == 2)

            #expect(try await client.execute(uri: "/v1/migrations/\(id)/approve", method: .post, headers: auth).status == .ok)
            #expect(try await waitForPhase("done", of: id, client) == "done")
            let done = try await scrape(client)
            scrapes.append(done)
            #expect(done.phase(of: id) == "done")
            #expect(done.awaitedGate(of: id) == nil)
            #expect(done.value("reshard_migration_rows_copied", mine) == rows)

            let phasesShown = Set(scrapes.compactMap { $0.phase(of: id) })
            #expect(phasesShown == ["preparing", "catching_up", "verifying", "baking", "done"])
            let exported = scrapes.reduce(into: Set<String>()) { $0.formUnion($1.families) }
            // The slot gauges need a PostgreSQL shard: `replicationSlotsAreSampled` checks them.
            for name in try Scrape.alertMetrics() where !name.hasPrefix("reshard_replication_slot_") {
                #expect(exported.contains(name), "deploy/prometheus/alerts.yml uses \(name), which /metrics does not export")
            }
        }
    }

    func scrape(_ client: any TestClientProtocol) async throws -> Scrape {
        let response = try await client.execute(uri: "/metrics", method: .get)
        #expect(response.status == .ok)
        return Scrape(String(decoding: response.body.readableBytesView, as: UTF8.self))
    }
}

/// One scrape of `/metrics` in the Prometheus text format, parsed into samples.
struct Scrape {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    let samples: [Sample]

    init(_ text: String) {
        samples = text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...])
            else { return nil }
            let series = line[..<space]
            let name = series.prefix { $0 != "{" }
            var labels: [String: String] = [:]
            for match in series.dropFirst(name.count).matches(of: /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/) {
                labels[String(match.output.1)] = String(match.output.2)
            }
            return Sample(name: String(name), labels: labels, value: value)
        }
    }

    /// The value of the first sample of `name` carrying every label of `labels`.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    /// The phase whose series is 1 for `migration`, if exactly one is.
    func phase(of migration: String) -> String? {
        let current = samples.filter { $0.name == "reshard_migration_phase" && $0.labels["migration"] == migration && $0.value == 1 }
        return current.count == 1 ? current.first?.labels["phase"] : nil
    }

    /// The gate whose series is 1 for `migration`, if one is.
    func awaitedGate(of migration: String) -> String? {
        samples.first { $0.name == "reshard_migration_awaiting_approval" && $0.labels["migration"] == migration && $0.value == 1 }?
            .labels["gate"]
    }

    /// The metric families sampled (a histogram's `_bucket`, `_count` and `_sum` under its name).
    var families: Set<String> {
        Set(
            samples.map { sample in
                for suffix in ["_bucket", "_count", "_sum"] where sample.name.hasSuffix(suffix) {
                    return String(sample.name.dropLast(suffix.count))
                }
                return sample.name
            })
    }

    /// Every `reshard_…` metric the example alert rules use.
    static func alertMetrics() throws -> Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let rules = try String(contentsOf: root.appendingPathComponent("deploy/prometheus/alerts.yml"), encoding: .utf8)
        let names = Set(rules.matches(of: /reshard_[a-z0-9_]+/).map { String($0.output) })
        #expect(names.count >= 8, "the rules name the metrics they alert on")
        return names
    }
}
