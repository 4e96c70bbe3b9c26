@testable import ReshardCore

/// Runs the machine's work against the simulated world, one item per step, persisting the
/// machine after every event the way the real runner journals it. A copy chunk is read in one
/// step and written in a later one, so changelog deliveries can land in between (the
/// backfill/CDC race of the field).
struct SimMigrator {
    var machine: MigrationStateMachine
    var journal: MigrationStateMachine
    var pendingCopy: (task: Int, target: ShardID, rows: [StoredRow], last: ScanCursor?, done: Bool)?
    var crashes = 0
    var tailLimit = 7

    init(machine: MigrationStateMachine) {
        self.machine = machine
        self.journal = machine
    }

    /// Does one unit of the machine's next round; with `crashAfter` the process dies right after
    /// the work's effect, before its event is fed back and journaled.
    mutating func step(_ world: inout SimWorld, crashAfter: Bool) {
        let event: MigrationEvent
        if let copy = pendingCopy, world.random.next() % 2 == 0 {
            world.shards[copy.target]?.apply(copy.rows, now: world.now)
            pendingCopy = nil
            event = .chunkCopied(task: copy.task, last: copy.last, rows: copy.rows.count, done: copy.done)
        } else {
            let work = machine.nextRound(now: world.now).filter { item in
                if case .copyChunk = item { return pendingCopy == nil }
                return true
            }
            guard !work.isEmpty else { return }
            guard let next = perform(work[Int(world.random.next() % UInt64(work.count))], in: &world) else { return }
            event = next
        }
        if crashAfter {
            crash(&world)
            return
        }
        machine.finish(round: [event], now: world.now)
        if machine.journalDue(since: journal.durableProjection) { journal = machine }
    }

    mutating func command(_ event: MigrationEvent, now: UInt64) -> MigrationOutcome {
        let outcome = machine.on(event, now: now)
        journal = machine
        return outcome
    }

    /// The migrator (and, embedded, its routers) die: what was not journaled is lost.
    mutating func crash(_ world: inout SimWorld) {
        crashes += 1
        pendingCopy = nil
        world.crashRouters()
        machine = journal
        machine.on(.restarted(publishedGeneration: world.metadata.generation), now: world.now)
        journal = machine
    }

    private mutating func perform(_ work: MigrationWork, in world: inout SimWorld) -> MigrationEvent? {
        let plan = machine.plan
        switch work {
        case .prepare(let sources, _):
            return .prepared(positions: Dictionary(uniqueKeysWithValues: sources.map { ($0, world.shards[$0]?.head ?? 0) }))
        case .copyChunk(let task, let move, let table, let after, let limit):
            let rows = world.shards[move.source]?.scan(table, move.range, after: after, limit: limit) ?? []
            let last = rows.last.map { ScanCursor(hash: $0.hash, pk: $0.pk) } ?? after
            pendingCopy = (task, move.target, rows, last, rows.count < limit)
            return nil
        case .tail(let direction, let shard, let after, let through):
            return tail(direction, shard: shard, after: after, through: through, in: &world)
        case .verify:
            var positions: [ShardID: UInt64] = [:]
            for source in plan.sources {
                let head = world.shards[source]?.head ?? 0
                _ = tail(.forward, shard: source, after: machine.forward[source]?.position ?? 0, through: head, in: &world)
                positions[source] = head
            }
            // Row by row with the same diff the real verifier runs on differing sub-ranges: the
            // simulation never corrupts a shard, so any difference is a protocol bug.
            var report = VerificationReport(at: world.now)
            report.positions = positions
            for (index, move) in plan.moves.enumerated() {
                var result = MoveVerification(move: index)
                for table in machine.tables {
                    let source = world.shards[move.source]?.scan(table, move.range, after: nil, limit: .max) ?? []
                    let target = world.shards[move.target]?.scan(table, move.range, after: nil, limit: .max) ?? []
                    result.rowsCompared += source.count
                    for difference in RowDiff.compare(source: source, target: target) {
                        result.differences[difference.kind, default: 0] += 1
                        report.unresolved.append("\(table)/\(difference.pk) \(difference.kind.rawValue) in \(move)")
                    }
                }
                result.passes = 1
                result.clean = result.differenceCount == 0
                report.moves.append(result)
            }
            return .verified(report)
        case .holdWrites(let ranges, _):
            world.hold(ranges)
            return .writesHeld
        case .fence(let byShard, let generation, let readPositions):
            for (shard, ranges) in byShard {
                for range in ranges {
                    let existing = world.shards[shard]?.fences[range] ?? 0
                    world.shards[shard]?.fences[range] = max(existing, generation)
                }
            }
            return .fenced(positions: Dictionary(uniqueKeysWithValues: readPositions.map { ($0, world.shards[$0]?.head ?? 0) }))
        case .publish(let map):
            world.publish(map)
            return .published
        case .releaseWrites:
            world.release()
            return .writesReleased
        case .removeFences(let byShard):
            for (shard, ranges) in byShard { for range in ranges { world.shards[shard]?.fences[range] = nil } }
            return .fencesRemoved
        case .deleteChunk(let task, let shard, let range, let limit):
            let deleted = world.shards[shard]?.deleteRange(range, limit: limit) ?? 0
            return .chunkDeleted(task: task, rows: deleted, done: deleted < limit)
        case .purgeTombstones(let task, let shard, let before, let limit):
            let purged = world.shards[shard]?.purgeTombstones(before: before, limit: limit) ?? 0
            return .tombstonesPurged(task: task, rows: purged, done: purged < limit)
        case .checkShadowReads(_, let upTo):
            // Every shadow read checks itself as it happens (a mismatch is a violation at once).
            return .shadowReadsChecked(upTo: upTo)
        case .showCanary(let directive):
            world.canary = directive?.plan
            return .canaryShown(directive)
        case .waitUntil:
            return .tick
        case .closeStreams:
            return .streamsClosed
        case .finish:
            return .finished
        }
    }

    /// Applies the next changes of `shard`'s changelog that belong to moving ranges to the
    /// other side of their move.
    private func tail(_ direction: ReplicationDirection, shard: ShardID, after: UInt64, through: UInt64?, in world: inout SimWorld)
        -> MigrationEvent
    {
        let plan = machine.plan
        var position = after
        while true {
            let changes = world.shards[shard]?.changes(after: position, limit: tailLimit) ?? []
            for change in changes where through.map({ change.position <= $0 }) ?? true {
                if let move = plan.move(containing: change.row.hash) {
                    let (from, to) = direction == .forward ? (move.source, move.target) : (move.target, move.source)
                    if from == shard { world.shards[to]?.apply([change.row], now: world.now) }
                }
                position = change.position
            }
            guard let through, position < through, !changes.isEmpty else { break }
        }
        let head = world.shards[shard]?.head ?? position
        let oldest = world.shards[shard]?.changes(after: position, limit: 1).first
        return .tailed(
            direction, shard: shard, position: position, backlog: Int(head - position),
            lagMillis: oldest.map { world.now - $0.atMillis } ?? 0)
    }
}
