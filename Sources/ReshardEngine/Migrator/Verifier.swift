import ReshardCore
import ReshardStore

/// Proves every move before the switch. Each old owner's counts and checksums are read in one
/// snapshot together with its changelog position P; the new owner is then drained to exactly P
/// (and no further, because nothing else writes to a moving range before the switch), so both
/// sides must hold the same rows: any difference is real, never an artefact of concurrent writes.
struct Verifier: Sendable {
    let worker: MigrationWorker

    func verify(_ machine: MigrationStateMachine, now: UInt64) async throws -> MigrationEvent {
        let plan = machine.plan
        let tables = worker.router.tables.map(\.name)
        let applier = worker.changeApplier(machine)
        var mismatches: [String] = []
        var positions: [ShardID: UInt64] = [:]
        for source in plan.sources {
            let moves = plan.moves.filter { $0.source == source }
            let snapshot = try await worker.store(source).snapshotSummaries(tables: tables, ranges: moves.map(\.range))
            positions[source] = try await applier.drain(
                .forward, shard: source, after: machine.forward[source]?.position ?? 0, through: snapshot.position, now: now)
            for (index, move) in moves.enumerated() {
                let target = try worker.store(move.target)
                for table in tables {
                    let expected = snapshot.summaries[table]?[index] ?? .empty
                    let found = try await target.summary(table: table, range: move.range)
                    if expected != found {
                        mismatches.append(
                            "\(table) \(move): source \(expected.rows) rows/\(HashRange.hex(expected.checksum)), "
                                + "target \(found.rows) rows/\(HashRange.hex(found.checksum))")
                    }
                }
            }
        }
        return .verified(mismatches: mismatches, positions: positions)
    }
}
