extension MigrationStateMachine {
    /// The moving ranges of every old owner (forward) or new owner (backward), for fences.
    func ranges(byOwner direction: ReplicationDirection) -> [ShardID: [HashRange]] {
        var result: [ShardID: [HashRange]] = [:]
        for move in plan.moves {
            result[direction == .forward ? move.source : move.target, default: []].append(move.range)
        }
        return result
    }

    /// The cutover in force runs forward unless a rollback is driving it backwards.
    var cutoverDirection: ReplicationDirection { phase == .rollingBack ? .reverse : .forward }

    mutating func beginCutover(now: UInt64) {
        if cutoverAttempts >= settings.maxCutoverAttempts {
            fail("cutover did not complete in \(cutoverAttempts) attempts")
            return
        }
        cutoverAttempts += 1
        phase = .cuttingOver
        cutover = CutoverProgress(step: .hold, drainTo: [:], heldAt: nil)
        // Set before the hold, when it is journaled: the runner does not journal while writes are
        // held, so after a crash this flag is what tells an abort or a rollback to take fences off
        // (removing a fence that was never set is harmless).
        sourcesFenced = true
    }

    /// After a crash the journal can lag the metadata store by the publish step, because the
    /// runner does not journal while writes are held. When the map this cutover publishes is
    /// already current, the switch happened: it must be finished, never undone as if it had not.
    /// Part of `.restarted`.
    mutating func reconcile(publishedGeneration current: UInt64) {
        guard var progress = cutover, progress.step != .release else { return }
        let reversing = (phase == .failed ? interrupted : phase) == .rollingBack
        guard current >= (reversing ? rollbackGeneration : switchGeneration) else { return }
        progress.step = .release
        cutover = progress
        // Reverse replication positions recorded at the fence may be missing from the journal; a
        // missing one starts at 0, which replays more but loses nothing (the version rule).
        switched = !reversing
    }

    /// One protocol step done, in either direction.
    mutating func onCutoverStep(_ event: MigrationEvent, now: UInt64) {
        if case .fencesRemoved = event {
            sourcesFenced = false
            return
        }
        if case .writesReleased = event, cutover == nil || phase == .catchingUp || phase == .failed || rollback == .releaseHold {
            // An aborted cutover, a failed migration, or a rollback letting its hold go.
            holding = false
            return
        }
        if phase == .rollingBack, onRollbackStep(event) { return }
        guard var progress = cutover else { preconditionFailure("\(event) with no cutover in progress") }
        switch (progress.step, event) {
        case (.hold, .writesHeld):
            holding = true
            progress.heldAt = now
            progress.step = .fence
        case (.fence, .fenced(let positions)):
            let fenced = cutoverDirection == .forward ? plan.sources : plan.targets
            progress.drainTo = positions.filter { fenced.contains($0.key) }
            if cutoverDirection == .forward {
                sourcesFenced = true
                // Reverse replication starts from the new owners' positions read before the switch,
                // when no client can write to them yet. A repeated fence (after a crash the
                // machine may not know the map is out) never moves the start later: a later start
                // could skip client writes made after the switch.
                for target in plan.targets {
                    let position = positions[target] ?? 0
                    let start = min(reverse[target]?.position ?? position, position)
                    reverse[target] = StreamProgress(position: start, backlog: 0, lagMillis: 0)
                }
            }
            progress.step = .drain
        case (.publish, .published):
            switched = cutoverDirection == .forward
            progress.step = .release
        case (.release, .writesReleased):
            holding = false
            if let heldAt = progress.heldAt { pausesMillis.append(now >= heldAt ? now - heldAt : 0) }
            cutover = nil
            if cutoverDirection == .forward {
                // Baking begins with the release and must not wait on a person; a strategy that
                // switches first goes on to copy, which is not gated either (writes were just held).
                phase = nextPhase
                if phase == .baking { bakeUntil = now.adding(saturating: settings.bakeMillis) }
            } else {
                rollback = .deleteCopies
                prepareDeletions(from: .reverse)
            }
            return
        default:
            preconditionFailure("\(event) during cutover step \(progress.step)")
        }
        cutover = progress
    }

    /// The drain is complete when every fenced changelog has been applied up to its position.
    mutating func advanceDrain() {
        guard var progress = cutover, progress.step == .drain else { return }
        let streams = cutoverDirection == .forward ? forward : reverse
        let drained = progress.drainTo.allSatisfy { shard, target in (streams[shard]?.position ?? 0) >= target }
        if drained {
            progress.step = .publish
            cutover = progress
        }
    }

    /// A cutover that took too long before the switch goes back to catching up: fences off,
    /// held writes released to the old owners, another attempt later (`advance` decides when).
    mutating func abortCutover(reason: String) {
        cutover = nil
        phase = .catchingUp
        if cutoverAttempts >= settings.maxCutoverAttempts {
            fail("cutover aborted \(cutoverAttempts) times; last: \(reason)")
        }
    }

    /// A shard-key change's cutover: the same protocol for the table alone. Its writes are held,
    /// the layout in force is retired on every shard (which fences it), the other layout is
    /// drained to the positions read with the retirement, the table's new layout is published.
    func relayoutCutoverWork(_ relayout: Relayout, step: CutoverStep, generation: UInt64) -> [MigrationWork] {
        let forward = cutoverDirection == .forward
        let shards = plan.sources
        switch step {
        case .hold:
            return [.holdTable(relayout.from.name, layout: generation)]
        case .fence:
            return [.retire(forward ? relayout.from.storages : relayout.to.storages, layout: generation, shards: shards)]
        case .drain:
            let streams = forward ? self.forward : reverse
            guard let progress = cutover else { return [] }
            return progress.drainTo.keys.sorted().compactMap { shard in
                let applied = streams[shard]?.position ?? 0
                let target = progress.drainTo[shard] ?? 0
                return applied < target ? .tail(cutoverDirection, shard: shard, after: applied, through: target) : nil
            }
        case .publish:
            if forward { return [.publishLayout(relayout.to, replacing: relayout.from.layoutGeneration)] }
            // Backwards, the old layout is still retired by the switch: it must take writes again
            // before it is published, or the released writes would be refused by its stores.
            if sourcesFenced { return [.unretire(relayout.from.storages, shards: shards)] }
            return [.publishLayout(relayout.from.restored(at: generation), replacing: relayout.to.layoutGeneration)]
        case .release:
            return [.releaseWrites]
        }
    }

    /// Taking the fences of a switch that did not happen off (an aborted cutover, a failed
    /// migration, a rollback before the switch).
    var removeFencesWork: [MigrationWork] {
        if let relayout = plan.relayout { return [.unretire(relayout.from.storages, shards: plan.sources)] }
        return [.removeFences(ranges(byOwner: .forward))]
    }

    /// The work of the current cutover step.
    func cutoverWork() -> [MigrationWork] {
        guard let progress = cutover else { return [] }
        let direction = cutoverDirection
        // The generation this cutover switches to: routers that have it hold nothing.
        let generation = direction == .forward ? switchGeneration : rollbackGeneration
        if let relayout = plan.relayout { return relayoutCutoverWork(relayout, step: progress.step, generation: generation) }
        switch progress.step {
        case .hold:
            return [.holdWrites(plan.moves.map(\.range), generation: generation)]
        case .fence:
            return [
                .fence(ranges(byOwner: direction), generation: generation, readPositions: Array(Set(plan.sources + plan.targets)).sorted())
            ]
        case .drain:
            let streams = direction == .forward ? forward : reverse
            return progress.drainTo.keys.sorted().compactMap { shard in
                let applied = streams[shard]?.position ?? 0
                let target = progress.drainTo[shard] ?? 0
                return applied < target ? .tail(direction, shard: shard, after: applied, through: target) : nil
            }
        case .publish:
            return [.publish(direction == .forward ? plan.target : plan.source.withGeneration(rollbackGeneration))]
        case .release:
            return [.releaseWrites]
        }
    }
}
