import GRDB
import Logging

/// Moves a shard's WAL into its database file in the background.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, so one
/// unlucky client write pays for copying and syncing the whole WAL: `reshard-bench router`
/// measured PUT p99 16 ms and a 628 ms maximum at 16 connections with it.
///
/// Instead, a PASSIVE checkpoint on a connection of its own copies frames while client writes
/// go on (it never waits for the writer), doing the slow copying and syncing off the write path.
/// A PASSIVE checkpoint racing a busy writer never finishes the whole WAL, though, and SQLite
/// only restarts a WAL that was checkpointed to its end, so once the WAL passes `restartFrames`
/// the checkpointer takes one more PASSIVE checkpoint through the writer's own connection: it
/// then has only the few frames written since the last pass to copy, reaches the end, and the
/// next write starts the WAL from the beginning.
final class WALCheckpointer: Sendable {
    private let task: Task<Void, Never>

    /// Starts checkpointing the database of `writer` (at `path`) every `interval`.
    init(
        path: String, writer: DatabasePool, interval: Duration = .milliseconds(100), restartFrames: Int = 4_096, logger: Logger
    ) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(2)
        let background = try DatabaseQueue(path: path, configuration: configuration)
        task = Task.detached(priority: .utility) {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                do {
                    let (frames, _) = try await background.writeWithoutTransaction { try $0.checkpoint(.passive) }
                    if frames > restartFrames {
                        _ = try await writer.writeWithoutTransaction { try $0.checkpoint(.passive) }
                    }
                } catch is CancellationError {
                    return
                } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_INTERRUPT].contains(error.resultCode) {
                    // Another checkpoint held the lock, or the store is closing: the next pass
                    // catches up, so this is routine, not a warning.
                    logger.debug("WAL checkpoint skipped", metadata: ["path": "\(path)", "error": "\(error)"])
                } catch {
                    logger.warning("WAL checkpoint failed", metadata: ["path": "\(path)", "error": "\(error)"])
                }
            }
        }
    }

    deinit {
        task.cancel()
    }
}
