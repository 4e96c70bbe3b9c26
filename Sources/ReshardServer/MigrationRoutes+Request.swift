import Foundation
import Hummingbird
import ReshardAPI
import ReshardCore
import ReshardEngine

// What a migration request and an approval mean, once their JSON decoded: the rules the API's
// types leave to the server (kinds, shard names, ranges, gates, checks, the options' bounds).
extension MigrationRoutes {
    /// The gate an approve names in its optional body `{"gate":"before_cutover"}`; nil (the one
    /// the migration waits at) when the body is empty or names none.
    func approvedGate(_ request: Request) async throws -> MigrationPhase? {
        let bytes = Array(buffer: try await request.body.collect(upTo: maxBodyBytes))
        // An empty body approves the gate the migration waits at.
        guard !bytes.isEmpty else { return nil }
        try RequestInput.requireJSON(request)
        let body: API.Approve = try decodeJSON(bytes)
        guard let name = body.gate else { return nil }
        guard let gate = MigrationPhase(gate: name) else { throw Self.invalidGate(name) }
        return gate
    }

    /// The change a `settings` body asks for, with each value checked against the core's bounds
    /// before anything is sent to the migration (a refusal there would change nothing either,
    /// but would answer 409 for what is a bad request).
    func adjustment(_ request: Request) async throws -> MigrationAdjustment {
        try RequestInput.requireJSON(request)
        let bytes = Array(buffer: try await request.body.collect(upTo: maxBodyBytes))
        let body: API.ChangeMigrationSettings
        do {
            _ = try StrictJSON.object(bytes)
        } catch {
            throw APIError.invalidBody("the body must be one JSON object in UTF-8: \(error)")
        }
        do {
            body = try JSONDecoder().decode(API.ChangeMigrationSettings.self, from: Data(bytes))
        } catch let error as API.OptionError {
            let message =
                error.reason == .unknown
                ? "unknown setting \(error.option.prefix(64)); the settings a running migration takes are \(API.ChangeMigrationSettings.names.joined(separator: ", "))"
                : "\(error.option) must be \(MigrationSettings.rules[error.option] ?? "a whole number")"
            throw APIError(.badRequest, code: "invalid_option", message: message)
        } catch let error as DecodingError {
            throw APIError(decoding: error)
        }
        guard body.maxRowsPerSecond != nil || body.bakeMs != nil else {
            throw APIError.invalidBody("name max_rows_per_second, bake_ms or both")
        }
        var probe = MigrationSettings()
        if let rate = body.maxRowsPerSecond { probe.maxRowsPerSecond = rate }
        if let bake = body.bakeMs { probe.bakeMillis = bake }
        if let violation = probe.violation() {
            throw APIError(.badRequest, code: "invalid_option", message: "\(violation)")
        }
        return MigrationAdjustment(maxRowsPerSecond: body.maxRowsPerSecond, bakeMillis: body.bakeMs)
    }

    private static func invalidGate(_ name: String) -> APIError {
        APIError(
            .badRequest, code: "invalid_gate",
            message: "unknown gate \(name); gates are \(MigrationPhase.gateable.map(\.gateName).joined(separator: ", "))")
    }

    /// A strategy by its name; one the core has no table for yet is refused by name.
    private static func strategy(_ name: String) throws -> MigrationStrategy {
        func names(_ strategies: [MigrationStrategy]) -> String { strategies.map(\.rawValue).joined(separator: ", ") }
        let available = names(MigrationStrategy.allCases.filter(\.isAvailable))
        guard let strategy = MigrationStrategy(rawValue: name) else {
            throw APIError(
                .badRequest, code: "unsupported_strategy",
                message:
                    "unknown strategy \(String(reflecting: String(name.prefix(64)))); strategies are \(names(MigrationStrategy.allCases))")
        }
        guard strategy.isAvailable else {
            throw APIError(
                .badRequest, code: "unsupported_strategy", message: "strategy \(name) is not available yet; available: \(available)")
        }
        return strategy
    }

    /// What a `rebalance` evens out: rows (no signal, or `rows`), one load signal, or a `mix`
    /// by its weights.
    static func rebalanceKind(_ body: API.CreateMigration) throws -> MigrationKind {
        switch body.signal {
        case nil, "rows":
            guard body.weights == nil else {
                throw APIError(.badRequest, code: "invalid_weights", message: "\"weights\" go with \"signal\": \"mix\"")
            }
            return .rebalance
        case "mix":
            guard let weights = body.weights else {
                throw APIError(
                    .badRequest, code: "invalid_weights", message: "a mix rebalance needs \"weights\" (rows, requests, bytes, time)")
            }
            let mix = LoadMix(rows: weights.rows ?? 0, requests: weights.requests ?? 0, bytes: weights.bytes ?? 0, time: weights.time ?? 0)
            if let violation = mix.violation { throw APIError(.badRequest, code: "invalid_weights", message: violation) }
            return .rebalanceLoad(mix)
        case let name?:
            guard let signal = LoadSignal(rawValue: name) else { throw invalidSignal(name, mix: true) }
            guard body.weights == nil else {
                throw APIError(.badRequest, code: "invalid_weights", message: "\"weights\" go with \"signal\": \"mix\"")
            }
            return .rebalanceLoad(LoadMix(signal))
        }
    }

    /// The load signal that finds a `split_hot_range`'s range (requests by default).
    static func splitSignal(_ body: API.CreateMigration) throws -> LoadSignal {
        guard body.weights == nil else { throw APIError(.badRequest, code: "invalid_weights", message: "split_hot_range takes no weights") }
        guard let name = body.signal else { return .requests }
        guard let signal = LoadSignal(rawValue: name) else { throw invalidSignal(name, mix: false) }
        return signal
    }

    private static func invalidSignal(_ name: String, mix: Bool) -> APIError {
        APIError(
            .badRequest, code: "invalid_signal",
            message:
                "signal must be \(mix ? "rows, requests, bytes, time or mix" : "requests, bytes or time"), not \(String(reflecting: String(name.prefix(64))))"
        )
    }

    /// The engine's request from the API's: names resolved, options applied over the defaults
    /// and held to the core's bounds.
    static func migrationRequest(_ body: API.CreateMigration, splitHotRange: MigrationKind? = nil) throws -> MigrationRequest {
        let strategy = try body.strategy.map(Self.strategy)
        func shard() throws -> ShardID {
            guard let raw = body.shard else { throw APIError(.badRequest, code: "missing_shard", message: "\(body.kind) needs \"shard\"") }
            guard let id = ShardID(raw) else { throw APIError(.badRequest, code: "invalid_shard_id", message: "invalid shard id \(raw)") }
            return id
        }
        if !["rebalance", "split_hot_range"].contains(body.kind), body.signal != nil || body.weights != nil {
            throw APIError(
                .badRequest, code: "invalid_signal", message: "\"signal\" and \"weights\" apply to rebalance and split_hot_range")
        }
        let kind: MigrationKind
        switch body.kind {
        case "add_shard": kind = .addShard(try shard())
        case "remove_shard": kind = .removeShard(try shard())
        case "rebalance": kind = try rebalanceKind(body)
        case "split_hot_range":
            _ = try splitSignal(body)
            guard let splitHotRange else {
                throw APIError(.conflict, code: "no_hot_range", message: "no hot range was found to split")
            }
            kind = splitHotRange
        case "move_range":
            guard let start = body.start, let end = body.end, let range = HashRange(startText: start, endText: end) else {
                throw APIError(
                    .badRequest, code: "invalid_range", message: "move_range needs \"start\" and \"end\" as 0x-hex bounds, start < end")
            }
            kind = .moveRange(range, to: try shard())
        case "change_shard_key":
            guard let raw = body.table else {
                throw APIError(.badRequest, code: "missing_table", message: "change_shard_key needs \"table\"")
            }
            guard let table = TableName(raw) else {
                throw APIError(
                    .badRequest, code: "invalid_table_name",
                    message: "table names match [a-z][a-z0-9_]{0,62}; got \(String(reflecting: String(raw.prefix(80))))")
            }
            guard let field = body.shardKey else {
                throw APIError(.badRequest, code: "missing_shard_key", message: "change_shard_key needs \"shard_key\", the new field")
            }
            kind = .changeShardKey(table, field: field)
        default:
            throw APIError(
                .badRequest, code: "invalid_kind",
                message: "kind must be add_shard, remove_shard, rebalance, move_range, split_hot_range or change_shard_key")
        }
        var settings = MigrationSettings()
        settings.strategy = strategy
        if let options = body.options {
            settings.chunkRows = options.chunkRows ?? settings.chunkRows
            settings.maxLagChanges = options.maxLagChanges ?? settings.maxLagChanges
            settings.cleanupChunkRows = options.cleanupChunkRows ?? settings.cleanupChunkRows
            settings.maxRowsPerSecond = options.maxRowsPerSecond
            settings.maxLagMillis = options.maxLagMs ?? settings.maxLagMillis
            settings.bakeMillis = options.bakeMs ?? settings.bakeMillis
            settings.tombstoneGraceMillis = options.tombstoneGraceMs ?? settings.tombstoneGraceMillis
            if let factor = options.latencyFactor { settings.latencyFactor = factor == 0 ? nil : factor }
            settings.verifySubranges = options.verifySubranges ?? settings.verifySubranges
            settings.maxRepairPasses = options.maxRepairPasses ?? settings.maxRepairPasses
            settings.checks = try (options.checks ?? []).map { text in
                guard let check = AggregateCheck(text) else {
                    throw APIError(
                        .badRequest, code: "invalid_option", message: "checks are \"table.field\" with a plain field name, not \(text)")
                }
                return check
            }
            settings.canarySteps = options.canarySteps ?? settings.canarySteps
            settings.canaryStepMillis = options.canaryStepMs ?? settings.canaryStepMillis
            settings.readSteps = options.readSteps
            settings.readStepMillis = options.readStepMs
            settings.maxReadErrorRate = options.maxReadErrorRate
            settings.maxReadLatencyFactor = options.maxReadLatencyFactor
            settings.failedStreamRetentionMillis = options.failedStreamRetentionMs
            settings.cutoverBudgetMillis = options.cutoverBudgetMs
            settings.routerFollowMillis = options.routerFollowMs
            settings.gates = Set(
                try (options.gates ?? []).map { name in
                    guard let gate = MigrationPhase(gate: name) else { throw Self.invalidGate(name) }
                    return gate
                })
        }
        // The bounds live in the core, where a resumed journal is checked against them too.
        if let violation = settings.violation() {
            throw APIError(.badRequest, code: "invalid_option", message: "\(violation)")
        }
        return MigrationRequest(kind: kind, settings: settings, dryRun: body.dryRun ?? false)
    }
}
