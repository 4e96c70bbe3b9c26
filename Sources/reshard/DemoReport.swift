import Foundation
import ReshardEngine

/// The demo's findings as text and JSON, and the verdict.
struct DemoReport: Codable {
    struct Latency: Codable {
        let stage: String
        let requests: Int
        let p50Millis: Double
        let p99Millis: Double
        let maxMillis: Double
    }

    let rows: Int
    let clients: Int
    let rate: Int
    let migration: DemoRun.Result?
    let migrationError: String?
    let clientError: String?
    let check: DemoCheck.Result
    let latency: [Latency]
    let reads: Int
    let writes: Int
    let deletes: Int
    let rangeMoving: Int
    let errors: Int
    let lastError: String?
    let staleReads: Int
    let passed: Bool

    init(
        rows: Int, clients: Int, rate: Int, migration: DemoOutcome<DemoRun.Result>,
        results: DemoOutcome<[DemoWorkload.ClientResult]>, check: DemoCheck.Result
    ) {
        self.rows = rows
        self.clients = clients
        self.rate = rate
        self.migration = migration.value
        self.migrationError = migration.error
        self.clientError = results.error
        self.check = check
        let all = results.value ?? []
        latency = DemoStage.allCases.map { stage in
            var merged = LatencyHistogram(numberOfSignificantValueDigits: .three)
            for client in all { merged.add(client.latency[stage.rawValue]) }
            let millis = { (micros: UInt64) in Double(micros) / 1_000 }
            return Latency(
                stage: stage.name, requests: Int(merged.totalCount), p50Millis: millis(merged.valueAtPercentile(50)),
                p99Millis: millis(merged.valueAtPercentile(99)), maxMillis: millis(merged.max))
        }
        reads = all.reduce(0) { $0 + $1.reads }
        writes = all.reduce(0) { $0 + $1.writes }
        deletes = all.reduce(0) { $0 + $1.deletes }
        rangeMoving = all.reduce(0) { $0 + $1.rangeMoving }
        errors = all.reduce(0) { $0 + $1.errors }
        lastError = all.compactMap(\.lastError).first
        staleReads = all.reduce(0) { $0 + $1.staleReads }
        passed =
            migration.value?.phase == "done" && results.error == nil && errors == 0 && staleReads == 0 && check.lost == 0
            && check.resurrected == 0 && check.unexpected == 0 && check.misplaced == 0
    }

    /// The write pause over every held write of every cutover: the worst p50, p99 and max.
    var pause: PauseSummary? {
        guard let pauses = migration?.pauses.filter({ $0.count > 0 }), !pauses.isEmpty else { return nil }
        return PauseSummary(
            count: pauses.reduce(0) { $0 + $1.count }, p50Millis: pauses.map(\.p50Millis).max() ?? 0,
            p99Millis: pauses.map(\.p99Millis).max() ?? 0, maxMillis: pauses.map(\.maxMillis).max() ?? 0)
    }

    var text: String {
        var lines = ["Report"]
        func line(_ label: String, _ value: String) {
            lines.append("  " + label.padding(toLength: 20, withPad: " ", startingAt: 0) + value)
        }
        if let m = migration {
            let relayout = m.kind == "change_shard_key"
            let moved = Double(m.rowsPredicted) / Double(max(1, m.rowsAtStart))
            line(
                "rows moved",
                relayout
                    ? "every row of \(DemoRun.tableName): \(Demo.count(m.rowsPredicted)) rows re-placed by \(DemoRun.newShardKey); "
                        + "\(Demo.count(m.rowsCopied)) rows copied"
                    : String(
                        format: "%@ of %@ = %.1f %% (ideal 1/5 = 20.0 %%, ratio %.3f); %@ rows copied",
                        Demo.count(m.rowsPredicted) as NSString, Demo.count(m.rowsAtStart) as NSString, moved * 100, moved / 0.2,
                        Demo.count(m.rowsCopied) as NSString))
            line(
                "migration",
                String(
                    format: "%@ by %@ %@ in %.1f s over %d ranges; copy %@ rows/s; %d cutover attempt(s)",
                    (relayout ? "change_shard_key \(DemoRun.tableName) id → \(DemoRun.newShardKey)" : "add_shard s5") as NSString,
                    m.strategy as NSString, m.phase as NSString, m.seconds, m.moves, Demo.count(Int(m.copyRowsPerSecond)) as NSString,
                    m.cutoverAttempts))
            if m.secondWrites > 0 {
                line("second writes", "\(Demo.count(m.secondWrites)) client writes also written to s5 before the switch")
            }
            if m.recordedWrites + m.replayedWrites > 0 {
                line(
                    "replay",
                    "\(Demo.count(m.recordedWrites)) client writes recorded, \(Demo.count(m.replayedWrites)) replayed on s5 after the copy")
            }
            line("phases", m.phases.map { String(format: "%@ %.2f s", $0.name as NSString, $0.seconds) }.joined(separator: " · "))
            // The hold window bounds every held write's pause, so it settles the target even when
            // few writes (or none) happened to arrive inside it.
            let window = Double(m.holdMillis.max() ?? 0)
            let target = max(window, pause?.p99Millis ?? 0) < 10 ? "target p99 < 10 ms met" : "target p99 < 10 ms MISSED"
            if let pause {
                line(
                    "write pause",
                    String(
                        format: "p50 %.2f ms · p99 %.2f ms · max %.2f ms over %d held writes (%@)", pause.p50Millis, pause.p99Millis,
                        pause.maxMillis, pause.count, target as NSString))
            } else {
                line("write pause", "no client write arrived while writes were held (\(target))")
            }
            line(
                "writes held for",
                m.holdMillis.map { "\($0) ms" }.joined(separator: ", ") + " (the cutover window: no write waited longer)")
            line(
                "cutover steps",
                m.cutoverSteps.map { String(format: "%@ %.1f ms", $0.step.rawValue as NSString, Double($0.micros) / 1_000) }
                    .joined(separator: " · "))
            line(
                "verification",
                String(
                    format: "%@ rows compared in %@ sub-ranges in %.0f ms; %d sub-ranges differed, %d rows repaired",
                    Demo.count(m.verifiedRows) as NSString, Demo.count(m.verifiedSubranges) as NSString, m.verifyMillis,
                    m.differingSubranges, m.repaired))
            line(
                "canary",
                m.canarySteps.isEmpty
                    ? "none"
                    : (relayout ? "reads by primary key also read from the new layout at " : "reads shadow-read at ")
                        + m.canarySteps.map { String(format: "%.0f %%", $0) }.joined(separator: " → ")
                        + ": \(Demo.count(m.shadowReads)) reads, \(Demo.count(m.shadowMatches)) matched, \(m.shadowLag) lag, "
                        + "\(m.shadowMismatches) real mismatches"
                        + (m.shadowDeltaP99Micros.map { String(format: " (new owner latency delta p99 %+.2f ms)", Double($0) / 1_000) }
                            ?? ""))
            line(
                "cleanup",
                (relayout
                    ? "\(Demo.count(m.rowsDeleted)) rows of the old layout cleared and its tables dropped"
                    : "\(Demo.count(m.rowsDeleted)) moved rows deleted from the old owners")
                    + ", \(Demo.count(m.tombstonesPurged)) tombstones purged")
            if !m.throttleReasons.isEmpty { line("throttle", m.throttleReasons.joined(separator: "; ")) }
        }
        if let migrationError { line("migration error", migrationError) }
        line(
            "foreground p99",
            latency.map { String(format: "%@ %.2f ms", $0.stage as NSString, $0.p99Millis) }.joined(separator: " · ")
                + String(format: "  (max during %.1f ms)", latency[DemoStage.during.rawValue].maxMillis))
        line(
            "requests",
            "\(Demo.count(reads + writes + deletes)) (\(Demo.count(reads)) reads, \(Demo.count(writes)) writes, \(Demo.count(deletes)) deletes)"
                + " from \(clients) clients at \(Demo.count(rate))/s")
        line("errors", "\(errors) (and \(rangeMoving) bounded 503 range_moving)" + (lastError.map { "; last: \($0)" } ?? ""))
        if let clientError { line("client failure", clientError) }
        line(
            "checked",
            "\(Demo.count(check.keysChecked)) acknowledged keys: lost \(check.lost), resurrected \(check.resurrected), "
                + "unexpected \(check.unexpected), stale reads \(staleReads), misplaced rows \(check.misplaced)"
                + (check.ambiguous > 0 ? ", \(check.ambiguous) ambiguous (transport errors)" : ""))
        let shards = check.liveRowsPerShard.keys.sorted().map { "\($0) \(Demo.count(check.liveRowsPerShard[$0] ?? 0))" }
        line("live rows", shards.joined(separator: " · "))
        for example in check.examples.prefix(5) { line("  e.g.", example) }
        line("verdict", passed ? "PASS" : "FAIL")
        return lines.joined(separator: "\n")
    }

    func write(json path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
        say("wrote \(path)")
    }
}
