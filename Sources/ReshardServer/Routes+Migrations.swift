import Foundation
import Hummingbird
import ReshardCore
import ReshardEngine

/// Admin routes for migrations: create (or dry-run), list, inspect, read the verification report,
/// approve, pause, resume, roll back.
struct MigrationRoutes {
    let manager: MigrationManager
    let maxBodyBytes: Int

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.post("migrations") { request, _ -> Response in
            let body: MigrationCreateBody = try await decodeJSON(request, maxBytes: maxBodyBytes)
            let migration = try parse(body)
            let (id, preview) = try await manager.create(migration)
            var members = [("dry_run", migration.dryRun ? "true" : "false"), ("plan", planJSON(preview))]
            if let id { members.insert(("id", JSONText.quoted(id)), at: 0) }
            return jsonResponse(migration.dryRun ? .ok : .accepted, JSONText.object(members))
        }
        group.get("migrations") { _, _ -> Response in
            let all = try await manager.list().map { statusJSON($0, detailed: false) }
            let unreadable = manager.unreadableJournals.sorted { $0.key < $1.key }.map(unreadableJSON)
            return jsonResponse(.ok, JSONText.object([("migrations", JSONText.array(all + unreadable))]))
        }
        group.get("migrations/:id") { _, context -> Response in
            let id = try RequestInput.path(context, "id")
            guard let status = await manager.status(id) else {
                if let reason = manager.unreadableJournals[id] { return jsonResponse(.ok, unreadableJSON(id, reason)) }
                throw APIError(.notFound, code: "unknown_migration", message: "no migration \(id)")
            }
            return jsonResponse(.ok, statusJSON(status, detailed: true))
        }
        // One parameter name per path position (Hummingbird requires it): GET reads reports.
        group.get("migrations/:id/:command") { _, context -> Response in
            let id = try RequestInput.path(context, "id")
            guard try RequestInput.path(context, "command") == "verification" else {
                throw APIError(
                    .notFound, code: "unknown_report", message: "the report of a migration is at /v1/migrations/{id}/verification")
            }
            guard let status = await manager.status(id) else {
                throw APIError(.notFound, code: "unknown_migration", message: "no migration \(id)")
            }
            return jsonResponse(.ok, VerificationJSON.report(status))
        }
        group.post("migrations/:id/:command") { request, context -> Response in
            let id = try RequestInput.path(context, "id")
            let name = try RequestInput.path(context, "command")
            let event: MigrationEvent
            switch name {
            case "pause": event = .pause
            case "resume": event = .resume
            case "rollback": event = .rollback
            case "approve": event = .approve(try await approvedGate(request))
            default: throw APIError(.notFound, code: "unknown_command", message: "commands are approve, pause, resume and rollback")
            }
            switch try await manager.command(id, event) {
            case .accepted:
                let phase = await manager.status(id)?.machine.phase.rawValue ?? "unknown"
                return jsonResponse(.ok, JSONText.object([("id", JSONText.quoted(id)), ("phase", JSONText.quoted(phase))]))
            case .rejected(let reason):
                throw APIError(.conflict, code: "command_rejected", message: reason)
            }
        }
        refuseOtherMethods(on: group, path: "migrations", allowed: [.get, .post])
        refuseOtherMethods(on: group, path: "migrations/:id", allowed: [.get])
        refuseOtherMethods(on: group, path: "migrations/:id/:command", allowed: [.get, .post])
    }

    /// The gate an approve names in its optional body `{"gate":"before_cutover"}`; nil (the one
    /// the migration waits at) when the body is empty or names none.
    private func approvedGate(_ request: Request) async throws -> MigrationPhase? {
        struct Approve: Decodable { let gate: String? }
        let bytes = Array(buffer: try await request.body.collect(upTo: maxBodyBytes))
        // An empty body approves the gate the migration waits at.
        guard !bytes.isEmpty else { return nil }
        try RequestInput.requireJSON(request)
        let body: Approve = try decodeJSON(bytes)
        guard let name = body.gate else { return nil }
        guard let gate = MigrationPhase(gate: name) else { throw Self.invalidGate(name) }
        return gate
    }

    private static func invalidGate(_ name: String) -> APIError {
        APIError(
            .badRequest, code: "invalid_gate",
            message: "unknown gate \(name); gates are \(MigrationPhase.gateable.map(\.gateName).joined(separator: ", "))")
    }

    private func parse(_ body: MigrationCreateBody) throws -> MigrationRequest {
        if let strategy = body.strategy, strategy != "cdc_backfill" {
            throw APIError(
                .badRequest, code: "unsupported_strategy", message: "strategy \(strategy) is not available yet; use cdc_backfill")
        }
        func shard() throws -> ShardID {
            guard let raw = body.shard else { throw APIError(.badRequest, code: "missing_shard", message: "\(body.kind) needs \"shard\"") }
            guard let id = ShardID(raw) else { throw APIError(.badRequest, code: "invalid_shard_id", message: "invalid shard id \(raw)") }
            return id
        }
        let kind: MigrationKind
        switch body.kind {
        case "add_shard": kind = .addShard(try shard())
        case "remove_shard": kind = .removeShard(try shard())
        case "rebalance": kind = .rebalance
        case "move_range":
            guard let start = body.start, let end = body.end, let range = HashRange(startText: start, endText: end) else {
                throw APIError(
                    .badRequest, code: "invalid_range", message: "move_range needs \"start\" and \"end\" as 0x-hex bounds, start < end")
            }
            kind = .moveRange(range, to: try shard())
        default:
            throw APIError(
                .badRequest, code: "invalid_kind", message: "kind must be add_shard, remove_shard, rebalance or move_range")
        }
        var settings = MigrationSettings()
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
            settings.failedStreamRetentionMillis = options.failedStreamRetentionMs
            settings.cutoverBudgetMillis = options.cutoverBudgetMs
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

    private func planJSON(_ preview: MigrationPreview) -> String {
        let plan = preview.plan
        let moves = zip(plan.moves, preview.rowsPerMove).map { move, rows in
            JSONText.object([
                ("start", JSONText.quoted(move.range.startHex)), ("end", JSONText.quoted(move.range.endHex)),
                ("source", JSONText.quoted(move.source.rawValue)), ("target", JSONText.quoted(move.target.rawValue)),
                ("rows", String(rows)),
            ])
        }
        return JSONText.object([
            ("kind", JSONText.quoted(plan.kind.name)),
            ("from_generation", String(plan.source.generation)),
            ("to_generation", String(plan.target.generation)),
            ("moves", JSONText.array(moves)),
            ("rows", String(preview.rows)),
            ("bytes", String(preview.bytes)),
            ("moved_fraction", String(plan.movedFraction)),
            ("ideal_fraction", String(plan.idealFraction)),
        ])
    }

    /// A migration whose journal could not be read: failed, with why; nothing else is known.
    private func unreadableJSON(_ id: String, _ reason: String) -> String {
        JSONText.object([
            ("id", JSONText.quoted(id)), ("kind", "\"unknown\""), ("phase", "\"failed\""), ("moves", "0"), ("rows_copied", "0"),
            ("rows_estimated", "null"), ("error", JSONText.quoted(reason)),
        ])
    }

    private func statusJSON(_ status: MigrationStatus, detailed: Bool) -> String {
        let m = status.machine
        var members: [(String, String)] = [
            ("id", JSONText.quoted(m.id)),
            ("kind", JSONText.quoted(m.plan.kind.name)),
            ("phase", JSONText.quoted(m.phase.rawValue)),
            ("moves", String(m.plan.moves.count)),
            ("rows_copied", String(m.rowsCopied)),
            ("rows_estimated", m.estimatedRows.map(String.init) ?? "null"),
            ("error", status.error.map(JSONText.quoted) ?? "null"),
        ]
        guard detailed else { return JSONText.object(members) }
        let streams = { (streams: [ShardID: StreamProgress]) in
            JSONText.object(
                streams.sorted { $0.key < $1.key }.map { shard, stream in
                    (
                        shard.rawValue,
                        JSONText.object([
                            ("position", String(stream.position)),
                            ("backlog", stream.backlog == .max ? "null" : String(stream.backlog)),
                            ("lag_ms", String(stream.lagMillis)),
                        ])
                    )
                })
        }
        let pauses = status.pauses.map { pause in
            JSONText.object([
                ("writes_held", String(pause.count)), ("p50_ms", String(pause.p50Millis)), ("p99_ms", String(pause.p99Millis)),
                ("max_ms", String(pause.maxMillis)),
            ])
        }
        members += [
            ("interrupted", m.interrupted.map { JSONText.quoted($0.rawValue) } ?? "null"),
            ("from_generation", String(m.plan.source.generation)),
            ("to_generation", String(m.plan.target.generation)),
            ("copy_tasks_done", String(m.copies.filter(\.done).count)),
            ("copy_tasks", String(m.copies.count)),
            ("forward", streams(m.forward)),
            ("reverse", streams(m.reverse)),
            (
                "change_capture",
                JSONText.object(status.changeCapture.sorted { $0.key < $1.key }.map { ($0.key.rawValue, JSONText.quoted($0.value)) })
            ),
            ("cutover_step", m.cutover.map { JSONText.quoted($0.step.rawValue) } ?? "null"),
            ("cutover_attempts", String(m.cutoverAttempts)),
            (
                "phases",
                JSONText.array(
                    m.phaseLog.map { JSONText.object([("phase", JSONText.quoted($0.phase.rawValue)), ("at_ms", String($0.at))]) })
            ),
            (
                "cutover_steps",
                JSONText.array(
                    status.cutoverSteps.map {
                        JSONText.object([
                            ("step", JSONText.quoted($0.step.rawValue)), ("ms", JSONText.millis($0.micros)),
                        ])
                    })
            ),
            (
                "throttle",
                JSONText.object([
                    ("chunk_rows", status.throttleChunkRows.map(String.init) ?? "null"),
                    ("reason", status.throttleReason.map(JSONText.quoted) ?? "null"),
                ])
            ),
            ("write_pauses", JSONText.array(pauses)),
            ("rows_deleted", String(m.deletions.reduce(0) { $0 + $1.rows })),
            ("tombstones_purged", String(m.purges.reduce(0) { $0 + $1.rows })),
            ("rollback_step", m.rollback.map { JSONText.quoted($0.rawValue) } ?? "null"),
            ("mismatches", JSONText.array(m.mismatches.prefix(20).map(JSONText.quoted))),
        ]
        members += VerificationJSON.statusMembers(status, now: UInt64(Date().timeIntervalSince1970 * 1000))
        return JSONText.object(members)
    }
}

/// Decodes a JSON body of at most `maxBytes`: refused with 415 unless it is declared JSON (or
/// not declared), and with 400 `invalid_body` unless it is one strict UTF-8 JSON object
/// (`StrictJSON`) with the documented fields; a bad value names its field, and a bad value
/// under `options` is `invalid_option`.
func decodeJSON<T: Decodable>(_ request: Request, maxBytes: Int) async throws -> T {
    try RequestInput.requireJSON(request)
    return try decodeJSON(Array(buffer: try await request.body.collect(upTo: maxBytes)))
}

/// Decodes `bytes` as `decodeJSON(_:maxBytes:)` does, once they are read.
func decodeJSON<T: Decodable>(_ bytes: [UInt8]) throws -> T {
    do {
        _ = try StrictJSON.object(bytes)
    } catch {
        throw APIError.invalidBody("the body must be one JSON object in UTF-8: \(error)")
    }
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch let error as DecodingError {
        throw APIError(decoding: error)
    }
}

extension APIError {
    /// The answer to a body that is JSON but not of the documented shape, naming the field.
    init(decoding error: DecodingError) {
        let path: [any CodingKey]
        let problem: String
        switch error {
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
            problem = "is missing"
        case .typeMismatch(_, let context), .dataCorrupted(let context):
            path = context.codingPath
            problem = "has the wrong type or is out of range"
        case .valueNotFound(_, let context):
            path = context.codingPath
            problem = "must not be null"
        @unknown default:
            path = []
            problem = "is not as documented"
        }
        let field = path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        let named = field.isEmpty ? "the body \(problem)" : "\(field) \(problem)"
        let code = path.first?.stringValue == "options" ? "invalid_option" : "invalid_body"
        self.init(.badRequest, code: code, message: named)
    }
}
