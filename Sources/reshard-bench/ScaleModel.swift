import Foundation

/// A count given on the command line of `reshard-bench scale`: a plain integer (`1000000000`)
/// or a decimal exponent (`1e9`), whole and within `1…maximum`. Strict so that a typo fails
/// with a sentence instead of predicting for a cluster nobody meant.
enum ScaleCount {
    /// Why a count was refused, as a sentence naming the option.
    struct Refusal: Error, Hashable, CustomStringConvertible {
        let description: String
    }

    /// The count `text` names for `option`, or the reason it is refused.
    static func parse(_ text: String, option: String, maximum: Int) throws(Refusal) -> Int {
        let limit = "1…\(plain(maximum))"
        if let value = Int(text) {
            guard value >= 1 else { throw Refusal(description: "\(option) must be at least 1 (got \(text)); allowed: \(limit)") }
            guard value <= maximum else { throw Refusal(description: "\(option) must be at most \(plain(maximum)) (got \(text))") }
            return value
        }
        // Digits, a point, an exponent and signs only: `Double` would also read hex, `inf` and `nan`.
        let allowed = Set("0123456789.eE+-")
        guard !text.isEmpty, text.allSatisfy(allowed.contains), let value = Double(text), value.isFinite else {
            throw Refusal(description: "\(option) must be a whole number such as 1000 or 1e9 (got \"\(text.prefix(40))\")")
        }
        guard value >= 1 else { throw Refusal(description: "\(option) must be at least 1 (got \(text)); allowed: \(limit)") }
        // Compared as a Double first: converting a value beyond Int's range would trap.
        guard value <= Double(maximum) else { throw Refusal(description: "\(option) must be at most \(plain(maximum)) (got \(text))") }
        guard value.rounded(.towardZero) == value else {
            throw Refusal(description: "\(option) must be a whole number (got \(text))")
        }
        return Int(value)
    }

    /// `1e12` for powers of ten from a million up, digits otherwise: how the limits are typed.
    static func plain(_ value: Int) -> String {
        let exponent = Int(log10(Double(value)).rounded())
        if exponent >= 6, Double(value) == pow(10, Double(exponent)) { return "1e\(exponent)" }
        return grouped(value)
    }
}

/// What adding one shard to an N-shard, R-row cluster costs, from rates measured in this run.
/// Pure arithmetic, no I/O: the scenario measures the inputs, this turns them into the
/// prediction, and every assumption it makes is in `assumptions`.
struct ScaleModel: Codable, Sendable, Hashable {
    /// The plan the prediction is for, as measured on the N-shard map.
    struct Plan: Codable, Sendable, Hashable {
        /// The share of the rows that move (the plan's share of the hash space: rows hash
        /// uniformly).
        let movedFraction: Double
        /// Shards that give rows away.
        let sources: Int
        /// Ranges that change owner.
        let moves: Int
        /// Ranges of the map before and after.
        let rangesBefore: Int
        let rangesAfter: Int
        /// The journal's plan (both maps), written once, bytes.
        let planBytes: Int
        /// The rest of the journal (the copy tasks), written every round, bytes.
        let journalBytes: Int
    }

    /// Rates measured on this machine.
    struct Rates: Codable, Sendable, Hashable {
        /// One migration moving one source's rows to one target (the copy phase alone).
        let copyRowsPerSecond: Double
        /// Payload bytes per row of that copy (keys, body, version, hash).
        let bytesPerRow: Double
        /// The journal's first save, with the plan, milliseconds.
        let planSaveMillis: Double
        /// Every later save, the rest alone, milliseconds.
        let journalSaveMillis: Double
        /// One publish of the map after the add, milliseconds.
        let publishMillis: Double
        /// One router reading and installing that map, milliseconds.
        let pickupMillis: Double
    }

    /// The migrator's fixed knobs (`MigrationSettings` defaults).
    struct Knobs: Codable, Sendable, Hashable {
        /// Copy chunks in flight at once, across all moves and sources.
        let copyParallelism: Int
        /// Rows per chunk.
        let chunkRows: Int
        /// Bytes one range takes in a map in memory.
        let bytesPerRange: Int
    }

    let shards: Int
    let rows: Int
    let plan: Plan
    let rates: Rates
    let knobs: Knobs

    /// Rows that change owner.
    var rowsMoved: Double { Double(rows) * plan.movedFraction }
    /// Their payload bytes.
    var bytesMoved: Double { rowsMoved * rates.bytesPerRow }
    /// Change streams the migration opens when it prepares: one on every source for forward
    /// replication and one on the target for the reverse replication after the switch.
    var changeStreams: Int { plan.sources + 1 }
    /// Sources that can read at the same time: one chunk each, at most `copyParallelism`.
    var sourcesReadingAtOnce: Int { max(1, min(plan.sources, knobs.copyParallelism)) }
    /// Copy seconds when the one target is the bottleneck: every move converges on it, and it
    /// writes at the rate measured for one source and one target.
    var copySecondsTargetBound: Double { rowsMoved / max(rates.copyRowsPerSecond, 1e-9) }
    /// Copy seconds when the sources are: each reads at the measured rate, the target keeps up,
    /// and `sourcesReadingAtOnce` of them read side by side.
    var copySecondsSourceBound: Double { copySecondsTargetBound / Double(sourcesReadingAtOnce) }
    /// Rows buffered by chunks in flight, bytes (payload; what Swift adds is in the measured peak).
    var chunkBufferBytes: Double { Double(knobs.copyParallelism * knobs.chunkRows) * rates.bytesPerRow }
    /// The map before and after held by the migrator (its plan), bytes.
    var mapMemoryBytes: Double { Double((plan.rangesBefore + plan.rangesAfter) * knobs.bytesPerRange) }
    /// Rounds of the copy: each copies up to `copyParallelism` full chunks and is journaled.
    var journalSaves: Double { (rowsMoved / Double(max(1, knobs.copyParallelism * knobs.chunkRows))).rounded(.up) }
    /// Bytes the journals of the copy write to the metadata: the plan once, the rest per round.
    var journalBytesWritten: Double { Double(plan.planBytes) + journalSaves * Double(plan.journalBytes) }
    /// Seconds the copy spends saving its journal (rounds wait for it).
    var journalSeconds: Double { (rates.planSaveMillis + journalSaves * rates.journalSaveMillis) / 1_000 }

    /// The assumptions behind the figures, one sentence each.
    var assumptions: [String] {
        [
            "rows hash uniformly, so a plan moves its share of the hash space in rows",
            "bytes per row as in the measured copy (keys, body, version and hash)",
            "target bound: the new shard's one server writes at the rate measured for one migration from one source to one target",
            "source bound: each source reads at that rate and the target keeps up; at most copyParallelism = \(knobs.copyParallelism) chunks run at once, so at most \(knobs.copyParallelism) sources read side by side",
            "change streams: prepare opens one per source and one on the target (reverse replication after the switch); on PostgreSQL each is a logical replication slot",
            "migrator memory: \(knobs.copyParallelism) chunks × \(knobs.chunkRows) rows × bytes per row in flight whatever R (so the measured move's growth holds at any size), plus the map before and after at \(knobs.bytesPerRange) B per range",
            "journal: one save per copy round of \(knobs.copyParallelism) full chunks, each the journal without its plan (the copy tasks and progress) at the measured save time, after one first save with the plan (both maps); rounds wait for it, so its time adds to either copy time",
            "publish: once, inside the cutover's write hold; every router then reads and installs the new map once",
        ]
    }
}
