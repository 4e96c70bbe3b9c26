import ReshardAPI
import ReshardCore
import ReshardEngine
import ReshardStore

// The API's values built from the engine's: the one place that knows both, so a field is
// renamed or added here and in ReshardAPI, nowhere else. Engine types whose names the API
// shares are spelled with their module inside these extensions, where the bare name means
// the API's own.

extension API.WriteReceipt {
    init(_ receipt: ReshardEngine.WriteReceipt) {
        self.init(pk: receipt.pk, version: receipt.version, shard: receipt.shard.rawValue, generation: receipt.generation)
    }
}

extension API.DeleteReceipt {
    init(_ receipt: ReshardEngine.WriteReceipt) {
        self.init(pk: receipt.pk, version: receipt.version, shard: receipt.shard.rawValue, generation: receipt.generation)
    }
}

extension API.Table {
    init(_ table: TableDefinition) {
        self.init(name: table.name.rawValue, primaryKey: table.primaryKey, shardKey: table.shardKey)
    }
}

extension API.ShardCreated {
    init(_ record: ShardRecord) {
        self.init(id: record.id.rawValue, backend: record.location.backend, address: record.location.address)
    }
}

extension API.ShardInfo {
    init(_ shard: ReshardEngine.ShardInfo) {
        self.init(
            id: shard.id.rawValue, backend: shard.backend, address: shard.address, ranges: shard.ranges, fraction: shard.fraction,
            rows: shard.rows, changeCapture: shard.changeCapture)
    }
}

extension API.Cluster {
    init(_ cluster: ClusterInfo) {
        self.init(
            generation: cluster.map.generation, shards: cluster.shards.map(API.ShardInfo.init), tables: cluster.tables.map(API.Table.init),
            ranges: cluster.map.assignments.map {
                API.RangeAssignment(start: $0.range.startHex, end: $0.range.endHex, shard: $0.shard.rawValue)
            })
    }
}

extension API.Plan {
    init(_ preview: MigrationPreview, strategy: MigrationStrategy) {
        let plan = preview.plan
        self.init(
            kind: plan.kind.name, fromGeneration: plan.source.generation, toGeneration: plan.target.generation,
            moves: zip(plan.moves, preview.rowsPerMove).map { move, rows in
                API.PlanMove(
                    start: move.range.startHex, end: move.range.endHex, source: move.source.rawValue, target: move.target.rawValue,
                    rows: rows)
            },
            rows: preview.rows, bytes: preview.bytes, movedFraction: plan.movedFraction, idealFraction: plan.idealFraction,
            strategy: strategy.rawValue,
            steps: strategy.steps.filter { !plan.skippedPhases.contains($0.phase) }.map {
                API.PlanStep(
                    phase: $0.phase.rawValue, writes: $0.routes.writes.rawValue, reads: $0.routes.reads.rawValue, does: $0.does,
                    until: $0.until)
            },
            layout: API.LayoutPlan(plan.relayout, preview.layout),
            balance: preview.balance.map { balance in
                API.BalancePlan(
                    weights: API.LoadWeights(
                        rows: balance.mix.rows, requests: balance.mix.requests, bytes: balance.mix.bytes, time: balance.mix.time),
                    windows: balance.windows, routers: balance.routers, maxOverMean: balance.maxOverMean,
                    predictedMaxOverMean: balance.predictedMaxOverMean)
            })
    }
}

extension API.LayoutPlan {
    init?(_ relayout: Relayout?, _ layout: LayoutPreview?) {
        guard let relayout, let layout else { return nil }
        self.init(
            table: relayout.from.name.rawValue, shardKey: relayout.to.shardKey, rows: layout.rows, bytes: layout.bytes,
            rowsPerShard: Dictionary(uniqueKeysWithValues: layout.rowsPerShard.map { ($0.key.rawValue, $0.value) }),
            imbalance: layout.imbalance, unplaceable: layout.unplaceable, unplaceableExamples: layout.unplaceableExamples)
    }
}

extension API {
    /// Microseconds as the API's `ms` figures: milliseconds, at most three decimals.
    static func millis(_ micros: UInt64) -> Double {
        Double(micros) / 1_000
    }
}

extension API.LoadReport {
    init(_ view: LoadView, rules: HotSpotRules, top: Int) {
        let report = view.report
        let total = report.ranked.reduce(0) { $0 + (report.load[$1] ?? 0) }
        self.init(
            router: view.router, routers: view.routers, windowMs: LoadWindows.lastMinute.windowMillis, windows: view.windows,
            signal: rules.signal.rawValue,
            generation: view.generation,
            shards: report.ranked.map { shard in
                let load = report.load[shard] ?? 0
                return API.ShardLoad(
                    shard: shard.rawValue, load: load, share: total > 0 ? load / total : 0,
                    topKeys: (view.keys[shard]?.top(top) ?? []).map { API.TopKey(key: $0.key, count: $0.count, error: $0.error) })
            },
            maxOverMean: report.maxOverMean, predictedMaxOverMean: report.predictedMaxOverMean,
            finding: API.LoadFinding(report.finding, rules: rules))
    }
}

extension API.LoadFinding {
    init(_ finding: HotSpotFinding, rules: HotSpotRules) {
        let advice = finding.advice(rules: rules)
        switch finding {
        case .notEnoughData, .balanced:
            self.init(kind: finding.name, advice: advice)
        case .warming(let shard, let windows):
            self.init(kind: finding.name, shard: shard.rawValue, hotWindows: windows, advice: advice)
        case .hotKey(let shard, let key, let share):
            self.init(kind: finding.name, shard: shard.rawValue, key: key, share: share, advice: advice)
        case .move(let range, let from, let to):
            self.init(
                kind: finding.name, shard: from.rawValue,
                range: API.RangeAssignment(start: range.startHex, end: range.endHex, shard: to.rawValue),
                advice: advice)
        case .noWorthwhileMove(let shard):
            self.init(kind: finding.name, shard: shard.rawValue, advice: advice)
        }
    }
}
