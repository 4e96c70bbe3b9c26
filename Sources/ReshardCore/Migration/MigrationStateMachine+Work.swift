extension MigrationStateMachine {
    /// Moves to the next phase when the current one's exit criteria hold.
    mutating func advance(now: UInt64) {
        switch phase {
        case .copying where copies.allSatisfy(\.done):
            phase = .catchingUp
            // Backlogs read while copying are stale: catching up needs a fresh read of each source.
            for source in plan.sources { forward[source]?.backlog = .max }
        case .catchingUp where !holding && !sourcesFenced && caughtUp:
            phase = .verifying
        case .cuttingOver:
            advanceDrain()
        case .baking where now >= (bakeUntil ?? 0):
            // The point of no return: from here the old owners lose the moved rows and reverse
            // replication stops, so rollback is no longer offered.
            phase = .cleaningUp
            prepareDeletions(from: .forward)
            preparePurges(now: now)
        case .rollingBack:
            let before = (rollback, cutover)
            advanceRollback()
            if before != (rollback, cutover) { advance(now: now) }
        default:
            break
        }
    }

    /// Every old owner's changelog is applied to within the lag thresholds.
    var caughtUp: Bool {
        plan.sources.allSatisfy { source in
            guard let stream = forward[source] else { return false }
            return stream.backlog <= settings.maxLagChanges && stream.lagMillis <= settings.maxLagMillis
        }
    }

    /// What the runner should do now. Items in the list may run concurrently; each one's result
    /// comes back as an event. Empty while waiting for an operator (planned, paused, failed) or
    /// when the migration has ended.
    public func work(now: UInt64) -> [MigrationWork] {
        switch phase {
        case .planned, .paused, .done, .rolledBack:
            return []
        case .failed:
            // A migration that failed before the switch must not leave its ranges fenced or its
            // writes held while it waits for an operator: clients would get 503s until then.
            if sourcesFenced && !switched { return [.removeFences(ranges(byOwner: .forward))] }
            if holding { return [.releaseWrites] }
            return []
        case .preparing:
            return [.prepare(sources: plan.sources, targets: plan.targets)]
        case .copying:
            // Several tasks per round: plans often have hundreds of small moves (a ring's arcs),
            // and one chunk per round would spend more time journaling than copying.
            let next = copies.indices.lazy.filter { !copies[$0].done }.prefix(settings.copyParallelism).map { index -> MigrationWork in
                let task = copies[index]
                return .copyChunk(
                    task: index, move: plan.moves[task.move], table: task.table, after: task.cursor, limit: settings.chunkRows)
            }
            return Array(next) + forwardTails()
        case .catchingUp:
            if sourcesFenced { return [.removeFences(ranges(byOwner: .forward))] }
            if holding { return [.releaseWrites] }
            return forwardTails()
        case .verifying:
            return [.verify]
        case .cuttingOver:
            return cutoverWork()
        case .baking:
            return reverseTails() + [.waitUntil(bakeUntil ?? now)]
        case .cleaningUp:
            // Moved rows first: a purge must not race the deletion of the same shard's rows.
            let remaining = deletionWork()
            if !remaining.isEmpty { return remaining }
            let purging = purgeWork()
            return purging.isEmpty ? [.finish] : purging
        case .rollingBack:
            return rollbackWork()
        }
    }

    func forwardTails() -> [MigrationWork] {
        plan.sources.map { .tail(.forward, shard: $0, after: forward[$0]?.position ?? 0) }
    }

    func reverseTails() -> [MigrationWork] {
        plan.targets.map { .tail(.reverse, shard: $0, after: reverse[$0]?.position ?? 0) }
    }

    mutating func preparePurges(now: UInt64) {
        let horizonMillis = now > settings.tombstoneGraceMillis ? now - settings.tombstoneGraceMillis : 0
        tombstoneHorizon = HybridLogicalClock.timestamp(millis: horizonMillis)
        purges = plan.target.shards.sorted().map { PurgeTask(shard: $0, rows: 0, done: false) }
    }

    func purgeWork() -> [MigrationWork] {
        guard let horizon = tombstoneHorizon, horizon > 0 else { return [] }
        return purges.indices.filter { !purges[$0].done }.map { index in
            .purgeTombstones(task: index, shard: purges[index].shard, before: horizon, limit: settings.cleanupChunkRows)
        }
    }

    func deletionWork() -> [MigrationWork] {
        deletions.indices.filter { !deletions[$0].done }.map { index in
            let task = deletions[index]
            return .deleteChunk(task: index, shard: task.shard, range: plan.moves[task.move].range, limit: settings.cleanupChunkRows)
        }
    }
}
