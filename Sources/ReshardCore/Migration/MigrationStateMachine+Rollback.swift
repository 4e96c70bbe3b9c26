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
            rollback = sourcesFenced ? .removeFences : (holding ? .releaseHold : .deleteCopies)
            if rollback == .deleteCopies { prepareDeletions(from: .reverse) }
        }
    }

    mutating func startReverseCutover() {
        cutover = CutoverProgress(step: .hold, drainTo: [:], heldAt: nil)
    }

    /// Deletion tasks for every move: from the new owners (`.reverse`, rollback) or the old ones
    /// (`.forward`, cleanup).
    mutating func prepareDeletions(from side: ReplicationDirection) {
        deletions = plan.moves.indices.map { index in
            let move = plan.moves[index]
            return DeletionTask(move: index, shard: side == .forward ? move.source : move.target, rows: 0, done: false)
        }
    }

    /// Moves the rollback on when its step is complete.
    mutating func advanceRollback() {
        switch rollback {
        case .removeFences where !sourcesFenced:
            rollback = holding ? .releaseHold : .deleteCopies
            if rollback == .deleteCopies { prepareDeletions(from: .reverse) }
        case .releaseHold where !holding:
            if switched {
                rollback = .reverseCutover
                startReverseCutover()
            } else {
                rollback = .deleteCopies
                prepareDeletions(from: .reverse)
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
        case .removeFences: [.removeFences(ranges(byOwner: .forward))]
        case .releaseHold: [.releaseWrites]
        case .reverseCutover:
            // Reverse replication keeps the old owners close until the fence; the drain finishes it.
            (cutover?.step == .hold ? reverseTails() : []) + cutoverWork()
        case .deleteCopies: deletionWork()
        case .finish: [.finish(purgeThrough: forward.mapValues(\.position))]
        case nil: []
        }
    }
}
