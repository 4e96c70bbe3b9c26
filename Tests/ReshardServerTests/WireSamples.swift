import ReshardAPI

/// One value of each ReshardAPI type, with every optional member absent and with every one
/// present, for `WireSchemaTests`.
enum WireSamples {
    typealias Sample = WireSchemaTests.Sample

    static let all: [Sample] = service + admin + migrations + status + proof + dashboard

    static let service: [Sample] = [
        Sample(schema: "Error", minimal: API.ErrorBody(code: "c", message: "m"), full: API.ErrorBody(code: "c", message: "m")),
        Sample(schema: "Health", minimal: API.Health(generation: 1), full: API.Health(generation: 1)),
        Sample(schema: "WriteReceipt", minimal: receipt, full: receipt),
        Sample(schema: "DeleteReceipt", minimal: deleted, full: deleted),
        Sample(schema: "Row", minimal: row, full: row, leftToTheServer: ["row"]),
    ]

    static let admin: [Sample] = [
        Sample(
            schema: "CreateTable", minimal: API.CreateTable(name: "t", primaryKey: "id"),
            full: API.CreateTable(name: "t", primaryKey: "id", shardKey: "c")),
        Sample(schema: "Table", minimal: table, full: table),
        Sample(schema: "TableList", minimal: API.TableList(tables: []), full: API.TableList(tables: [table])),
        Sample(schema: "CreateShard", minimal: API.CreateShard(id: "s5"), full: API.CreateShard(id: "s5", url: "postgres://u@h/d")),
        Sample(schema: "ShardCreated", minimal: created, full: created),
        Sample(schema: "ShardInfo", minimal: shard, full: shard),
        Sample(schema: "ShardList", minimal: API.ShardList(shards: []), full: API.ShardList(shards: [shard])),
        Sample(schema: "RangeAssignment", minimal: range, full: range),
        Sample(schema: "Cluster", minimal: cluster, full: cluster),
        Sample(schema: "TopKey", minimal: topKey, full: topKey),
        Sample(schema: "ShardLoad", minimal: shardLoad, full: shardLoad),
        Sample(schema: "LoadFinding", minimal: API.LoadFinding(kind: "balanced", advice: "a"), full: moveFinding),
        Sample(schema: "LoadReport", minimal: loadReport(predicted: nil), full: loadReport(predicted: 1.05)),
    ]

    static let topKey = API.TopKey(key: "orders/c7", count: 9, error: 1)
    static let shardLoad = API.ShardLoad(shard: "s1", load: 10, share: 0.5, topKeys: [topKey])
    static let moveFinding = API.LoadFinding(kind: "move", shard: "s1", key: "k", share: 0.3, hotWindows: 10, range: range, advice: "a")
    static func loadReport(predicted: Double?) -> API.LoadReport {
        API.LoadReport(
            router: "r", routers: ["r", "r2"], windowMs: 1_000, windows: 10, signal: "requests", generation: 1, shards: [shardLoad],
            maxOverMean: 1.5,
            predictedMaxOverMean: predicted, finding: moveFinding)
    }

    static let migrations: [Sample] = [
        Sample(
            schema: "ClusterEvent",
            minimal: API.ClusterEvent(
                position: 1, atMs: 5, kind: "shard_map", generation: 1, previousGeneration: nil, table: nil, moves: [], migration: nil),
            full: API.ClusterEvent(
                position: 9, atMs: 1_796_598_150_103, kind: "cleanup", generation: 3, previousGeneration: 2, table: "orders",
                moves: [API.EventMove(start: "0x0000000000000000", end: "0x0012af933327b206", from: "s2", to: "s5")], migration: "m1")),
        Sample(
            schema: "EventStreamStart", minimal: API.EventStreamStart(position: 0, oldest: 0, generation: 1),
            full: API.EventStreamStart(position: .max, oldest: 17, generation: .max)),
        Sample(schema: "CreateMigration", minimal: API.CreateMigration(kind: "rebalance"), full: createMigration),
        Sample(schema: "MigrationOptions", minimal: API.MigrationOptions(), full: options),
        Sample(schema: "PlanMove", minimal: move, full: move),
        Sample(schema: "Plan", minimal: plan, full: layoutPlan),
        Sample(schema: "PlanStep", minimal: step, full: step),
        Sample(schema: "ReadServing", minimal: readServing(full: false), full: readServing(full: true)),
        Sample(
            schema: "Redirects", minimal: API.Redirects(copied: 0, oldOwnerReads: 0), full: API.Redirects(copied: 2, oldOwnerReads: 5)),
        Sample(
            schema: "Replay", minimal: API.Replay(recorded: 0, unrecorded: 0, replayed: 0, waiting: nil, position: 0),
            full: API.Replay(recorded: 9, unrecorded: 1, replayed: 8, waiting: 2, position: 8)),
        Sample(
            schema: "Routes", minimal: API.Routes(writes: "owner", reads: "owner", shadowPercent: 0),
            full: API.Routes(writes: "dual", reads: "owner", shadowPercent: 50)),
        Sample(
            schema: "SecondWrites",
            minimal: API.SecondWrites(
                active: false, written: 0, queued: 0, unqueued: 0, waiting: 0, retried: 0, reconcile: false, retryError: nil),
            full: API.SecondWrites(
                active: true, written: 3, queued: 1, unqueued: 1, waiting: 2, retried: 7, reconcile: true, retryError: "unreachable")),
        Sample(
            schema: "MigrationDryRun", minimal: API.MigrationCreated(id: nil, plan: plan), full: API.MigrationCreated(id: nil, plan: plan)),
        Sample(
            schema: "MigrationCreated", minimal: API.MigrationCreated(id: "m1", plan: plan),
            full: API.MigrationCreated(id: "m1", plan: plan)),
        Sample(schema: "Approve", minimal: API.Approve(), full: API.Approve(gate: "before_cutover")),
        Sample(
            schema: "CommandResult", minimal: API.CommandResult(id: "m1", phase: "paused"),
            full: API.CommandResult(id: "m1", phase: "paused")),
        Sample(
            schema: "ChangeMigrationSettings", minimal: API.ChangeMigrationSettings(bakeMs: 0),
            full: API.ChangeMigrationSettings(maxRowsPerSecond: 500, bakeMs: 60_000)),
        Sample(
            schema: "MigrationSettingsChanged",
            minimal: API.MigrationSettingsChanged(id: "m1", phase: "copying", maxRowsPerSecond: nil, bakeMs: 600_000, bakeUntilMs: nil),
            full: API.MigrationSettingsChanged(id: "m1", phase: "baking", maxRowsPerSecond: 500, bakeMs: 60_000, bakeUntilMs: 9_000)),
    ]

    static let status: [Sample] = [
        Sample(schema: "MigrationSummary", minimal: migrationSummary(full: false), full: migrationSummary(full: true)),
        Sample(schema: "UnreadableMigration", minimal: unreadable, full: unreadable),
        Sample(
            schema: "MigrationList", minimal: API.MigrationList(migrations: []),
            full: API.MigrationList(migrations: [migrationSummary(full: true)])),
        Sample(
            schema: "StreamProgress", minimal: API.StreamProgress(position: 1, backlog: nil, lagMs: 0),
            full: API.StreamProgress(position: 1, backlog: 3, lagMs: 2)),
        Sample(schema: "MigrationDetail", minimal: detail(full: false), full: detail(full: true)),
    ]

    static let proof: [Sample] = [
        Sample(schema: "CanaryState", minimal: canary(full: false), full: canary(full: true)),
        Sample(schema: "ShadowComparison", minimal: comparison(full: false), full: comparison(full: true)),
        Sample(schema: "ShadowReads", minimal: shadow(full: false), full: shadow(full: true)),
        Sample(schema: "DiffCounts", minimal: differences, full: differences),
        Sample(schema: "AggregateSide", minimal: side, full: side),
        Sample(schema: "AggregateResult", minimal: aggregate, full: aggregate),
        Sample(schema: "VerificationSummary", minimal: verification(aggregates: []), full: verification(aggregates: [aggregate])),
        Sample(schema: "MoveVerification", minimal: moveVerification(full: false), full: moveVerification(full: true)),
    ]

    static let receipt = API.WriteReceipt(pk: "42", version: 7, shard: "s1", generation: 1)
    static let deleted = API.DeleteReceipt(pk: "42", version: 8, shard: "s1", generation: 1)
    static let row = API.RowMetadata(pk: "42", version: 7, shard: "s1")
    static let table = API.Table(name: "users", primaryKey: "id", shardKey: "id")
    static let created = API.ShardCreated(id: "s5", backend: "sqlite", address: "s5.sqlite")
    static let shard = API.ShardInfo(
        id: "s1", backend: "sqlite", address: "s1.sqlite", ranges: 2, fraction: 0.25, rows: 10, changeCapture: "triggers")
    static let range = API.RangeAssignment(start: "0x0000000000000000", end: "0x10000000000000000", shard: "s1")
    static let cluster = API.Cluster(generation: 1, shards: [shard], tables: [table], ranges: [range])
    static let move = API.PlanMove(start: "0x0000000000000000", end: "0x1000000000000000", source: "s1", target: "s5", rows: 3)
    static let plan = API.Plan(
        kind: "add_shard", fromGeneration: 1, toGeneration: 2, moves: [move], rows: 3, bytes: 90, movedFraction: 0.2, idealFraction: 0.2,
        strategy: "dual_write", steps: [step])
    static let layoutPlan = API.Plan(
        kind: "change_shard_key", fromGeneration: 1, toGeneration: 1, moves: [move], rows: 3, bytes: 90, movedFraction: 1,
        idealFraction: 1, strategy: "cdc_backfill", steps: [step],
        layout: API.LayoutPlan(
            table: "orders", shardKey: "customer_id", rows: 3, bytes: 90, rowsPerShard: ["s1": 2, "s5": 1], imbalance: 1.33, unplaceable: 1,
            unplaceableExamples: ["o7"]),
        balance: API.BalancePlan(
            weights: API.LoadWeights(rows: 1, requests: 2, bytes: 0, time: 0), windows: 10, routers: ["r1", "r2"], maxOverMean: 2.5,
            predictedMaxOverMean: 1.04))
    static let step = API.PlanStep(phase: "dual_writing", writes: "dual", reads: "owner", does: "writes both", until: "shown")
    static let unreadable = API.MigrationSummary.unreadable(id: "m0", reason: "the journal cannot be read")
    static let differences = API.DiffCounts(missingOnTarget: 1, extraOnTarget: 0, olderOnTarget: 2, newerOnTarget: 0, corrupt: 0)
    static let side = API.AggregateSide(rows: 3, numeric: 3, sum: "10.5")
    static let aggregate = API.AggregateResult(check: "users.amount", old: side, new: side, matches: true)

    static var options: API.MigrationOptions {
        var options = API.MigrationOptions()
        options.chunkRows = 50
        options.maxLagChanges = 10
        options.maxLagMs = 100
        options.bakeMs = 300
        options.cleanupChunkRows = 50
        options.maxRowsPerSecond = 1_000
        options.tombstoneGraceMs = 0
        options.latencyFactor = 2
        options.verifySubranges = 16
        options.maxRepairPasses = 2
        options.checks = ["users.amount"]
        options.canarySteps = [1, 100]
        options.canaryStepMs = 50
        options.readSteps = []
        options.readStepMs = 40
        options.maxReadErrorRate = 0.05
        options.maxReadLatencyFactor = 3
        options.gates = ["before_cutover"]
        options.failedStreamRetentionMs = 1_000
        options.cutoverBudgetMs = 500
        options.routerFollowMs = 1_500
        return options
    }

    static let createMigration = API.CreateMigration(
        kind: "move_range", shard: "s5", table: "orders", shardKey: "customer_id", start: "0x0", end: "0x10", signal: "mix",
        weights: API.LoadWeights(rows: 1, requests: 2.5, bytes: 0, time: 1), strategy: "cdc_backfill",
        dryRun: true, options: options)

    static func migrationSummary(full: Bool) -> API.MigrationSummary {
        API.MigrationSummary(
            id: "m1", kind: "rebalance", phase: "copying", moves: 2, rowsCopied: 5, rowsEstimated: full ? 9 : nil,
            error: full ? "retrying" : nil, startedMs: full ? 1_796_598_150_103 : nil, endedMs: full ? 1_796_598_160_000 : nil)
    }

    static func canary(full: Bool) -> API.CanaryState {
        API.CanaryState(
            steps: [1, 10], stepMs: 30, step: full ? 1 : nil, percent: full ? 10 : nil, passed: false, stepEndsMs: full ? 9_000 : nil)
    }

    static func comparison(full: Bool) -> API.ShadowComparison {
        API.ShadowComparison(
            table: "users", pk: "7", sourceVersion: full ? 3 : nil, targetVersion: full ? 2 : nil, result: "lag", atMs: 1_000)
    }

    static func shadow(full: Bool) -> API.ShadowReads {
        API.ShadowReads(
            active: true, halted: false, percent: 10, reads: 4, matches: 3, lag: 1, mismatches: 0, errors: 0,
            latencyDeltaP50Us: full ? -5 : nil, latencyDeltaP99Us: full ? 40 : nil, recent: full ? [comparison(full: true)] : [])
    }

    static func verification(aggregates: [API.AggregateResult]) -> API.VerificationSummary {
        API.VerificationSummary(
            verifications: 1, passed: true, atMs: 1_000, ms: 1.234, moves: 1, rowsCompared: 3, subranges: 4, mismatchedSubranges: 1,
            differences: differences, repaired: 1, unresolved: 0, aggregates: aggregates)
    }

    static func moveVerification(full: Bool) -> API.MoveVerification {
        API.MoveVerification(
            move: 0, start: full ? move.start : nil, end: full ? move.end : nil, source: full ? "s1" : nil, target: full ? "s5" : nil,
            rowsCompared: 3, subranges: 4, mismatchedSubranges: 1, differences: differences, repaired: 1, passes: 2, clean: true, ms: 0.5)
    }

    static func detail(full: Bool) -> API.MigrationDetail {
        let stream = API.StreamProgress(position: 1, backlog: full ? 3 : nil, lagMs: 2)
        return API.MigrationDetail(
            summary: migrationSummary(full: full), interrupted: full ? "copying" : nil, fromGeneration: 1, toGeneration: 2,
            copyTasksDone: 1, copyTasks: 2, forward: ["s1": stream], reverse: [:], changeCapture: ["s1": "triggers"],
            cutoverStep: full ? "drain" : nil, cutoverAttempts: 1, phases: [API.PhaseMark(phase: "planned", atMs: 1)],
            cutoverSteps: [API.CutoverStepTiming(step: "hold", ms: 0.25)],
            throttle: API.Throttle(chunkRows: full ? 100 : nil, reason: full ? "lag" : nil, maxRowsPerSecond: full ? 500 : nil),
            writePauses: [API.WritePause(writesHeld: 2, p50Ms: 1, p99Ms: 2.5, maxMs: 3)], rowsDeleted: 0, tombstonesPurged: 0,
            rollbackStep: full ? "finish" : nil, mismatches: [],
            awaitingApproval: full ? API.AwaitingApproval(gate: "before_cutover", sinceMs: nil, waitingMs: nil) : nil,
            gates: ["before_cutover"], approved: [], bakeMs: 300, bakeUntilMs: full ? 5_000 : nil, canary: canary(full: full),
            shadowReads: full ? shadow(full: true) : nil, verification: full ? verification(aggregates: []) : nil,
            strategy: full ? "dual_write" : "cdc_backfill",
            routes: full ? API.Routes(writes: "dual", reads: "owner", shadowPercent: 10) : nil,
            secondWrites: full
                ? API.SecondWrites(
                    active: true, written: 5, queued: 1, unqueued: 0, waiting: 1, retried: 0, reconcile: false, retryError: nil) : nil,
            replay: full ? API.Replay(recorded: 4, unrecorded: 0, replayed: 3, waiting: 1, position: 3) : nil,
            reads: full ? readServing(full: true) : nil, redirects: full ? API.Redirects(copied: 3, oldOwnerReads: 7) : nil)
    }

    static func readServing(full: Bool) -> API.ReadServing {
        API.ReadServing(
            steps: full ? [10, 100] : [], stepMs: 30_000, step: full ? 1 : nil, percent: full ? 100 : nil, maxErrorRate: 0.01,
            maxLatencyFactor: 2, active: full, served: full ? 120 : 0, errors: full ? 1 : 0, oldPath: full ? 300 : 0,
            servedP99Ms: full ? 1.5 : nil, oldPathP99Ms: full ? 2.25 : nil, sentBack: full ? "1 of 120 served reads failed" : nil)
    }
}
