extension MigrationStateMachine {
    /// Rollback keeps every write: before the switch the old owners never stopped being
    /// authoritative, so fences come off, holds go and the copies are deleted; after the switch
    /// the cutover runs backwards, fed by the reverse replication kept live during bake.
    mutating func beginRollback() {
        if phase == .paused || phase == .failed {
            phase = interrupted ?? phase
        }
        interrupted = nil
        failure = nil
        awaitingApproval = nil
        awaitingSince = nil
        phase = .rollingBack
        if switched {
            rollback = holding ? .releaseHold : .reverseCutover
            if rollback == .reverseCutover { startReverseCutover() }
        } else {
            cutover = nil
            rollback = sourcesFenced ? .removeFences : (holding ? .releaseHold : unswitchedCopiesStep)
            if rollback == .deleteCopies { prepareDeletions(from: .reverse) }
        }
    }

    /// Where a rollback before the switch goes once fences and holds are off: to the copies, and
    /// first, when the strategy has routers write them a second time, to fencing them (see
    /// `RollbackStep`). Decided by the strategy, not by whether dual writes were seen: the phase
    /// log keeps only the last 64 phases, and fencing copies no router wrote costs nothing.
    var unswitchedCopiesStep: RollbackStep {
        settings.strategyInForce.writesSecond ? .fenceCopies : .deleteCopies
    }

    /// The old layout, one generation on: what a rollback before the switch publishes after dual
    /// writes.
    var republishedMap: ShardMap { plan.source.withGeneration(plan.target.generation) }

    /// A rollback step's own protocol event (fencing the copies, republishing).
    mutating func onRollbackStep(_ event: MigrationEvent) -> Bool {
        switch (rollback, event) {
        case (.fenceCopies, .fenced):
            rollback = .republish
        case (.republish, .published):
            rollback = .deleteCopies
            prepareDeletions(from: .reverse)
        default:
            return false
        }
        return true
    }

    mutating func startReverseCutover() {
        cutover = CutoverProgress(step: .hold, drainTo: [:], heldAt: nil)
    }

    /// Deletion tasks for every move: from the new owners (`.reverse`, rollback) or the old ones
    /// (`.forward`, cleanup).
    mutating func prepareDeletions(from side: ReplicationDirection) {
        if let relayout = plan.relayout {
            // The layout left behind goes whole, from every shard.
            let tables = side == .forward ? relayout.from.storages : relayout.to.storages
            deletions = plan.sources.flatMap { shard in
                tables.map { DeletionTask(move: 0, shard: shard, table: $0, rows: 0, done: false) }
            }
            return
        }
        deletions = plan.moves.indices.map { index in
            let move = plan.moves[index]
            return DeletionTask(move: index, shard: side == .forward ? move.source : move.target, table: nil, rows: 0, done: false)
        }
    }

    /// Moves the rollback on when its step is complete.
    mutating func advanceRollback() {
        switch rollback {
        case .removeFences where !sourcesFenced:
            rollback = holding ? .releaseHold : unswitchedCopiesStep
            if rollback == .deleteCopies { prepareDeletions(from: .reverse) }
        case .releaseHold where !holding:
            if switched {
                rollback = .reverseCutover
                startReverseCutover()
            } else {
                rollback = unswitchedCopiesStep
                if rollback == .deleteCopies { prepareDeletions(from: .reverse) }
            }
        case .reverseCutover:
            advanceDrain()
        case .deleteCopies where deletions.allSatisfy(\.done):
            rollback = .finish
        default:
            break
        }
    }

    /// The work of the current rollback step.
    func rollbackWork() -> [MigrationWork] {
        switch rollback {
        case .removeFences: removeFencesWork
        case .releaseHold: [.releaseWrites]
        case .fenceCopies: [.fence(ranges(byOwner: .reverse), generation: plan.target.generation, readPositions: [])]
        case .republish: [.publish(republishedMap)]
        case .reverseCutover:
            // Reverse replication keeps the old owners close until the fence; the drain finishes it.
            (cutover?.step == .hold ? reverseTails() : []) + cutoverWork()
        case .deleteCopies: deletionWork()
        case .finish: [.finish(purgeThrough: forward.mapValues(\.position))]
        case nil: []
        }
    }
}
