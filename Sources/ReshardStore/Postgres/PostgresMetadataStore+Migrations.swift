import Foundation
import PostgresNIO
import ReshardCore

/// Migration journals and the one active-migration slot.
extension PostgresMetadataStore {
    public func saveMigration(id: String, progress: String, plan: String?) async throws {
        try await run { connection in
            guard let plan else {
                let saved = try await Self.first(
                    String.self,
                    connection.query(
                        """
                        UPDATE reshard_meta_migrations SET journal = \(progress) WHERE id = \(id) AND plan IS NOT NULL
                        RETURNING id
                        """, logger: self.logger))
                if saved == nil { throw MetadataError.planMissing(id) }
                return
            }
            // Updating in place keeps the migration's first `seq`: the list stays in insertion order.
            _ = try await connection.query(
                """
                INSERT INTO reshard_meta_migrations(id, journal, plan) VALUES(\(id), \(progress), \(plan))
                ON CONFLICT (id) DO UPDATE SET journal = excluded.journal, plan = excluded.plan
                """, logger: self.logger)
        }
    }

    public func admitMigration(id: String, journal: String) async throws -> String? {
        try await run { connection in
            // One statement, so one transaction: the slot is taken (or found held by `id`) and
            // the journal written together. A concurrent admission waits on the slot's row and
            // then finds it held.
            let admitted = try await Self.first(
                String.self,
                connection.query(
                    """
                    WITH slot AS (
                        INSERT INTO reshard_meta_active_migration(slot, id) VALUES (1, \(id))
                        ON CONFLICT (slot) DO UPDATE SET id = excluded.id WHERE reshard_meta_active_migration.id = excluded.id
                        RETURNING id)
                    INSERT INTO reshard_meta_migrations(id, journal) SELECT id, \(journal) FROM slot
                    ON CONFLICT (id) DO UPDATE SET journal = excluded.journal, plan = NULL
                    RETURNING id
                    """, logger: self.logger))
            if admitted != nil { return nil }
            let holder = try await Self.first(
                String.self, connection.query("SELECT id FROM reshard_meta_active_migration WHERE slot = 1", logger: self.logger))
            return holder ?? ""
        }
    }

    public func releaseMigration(id: String) async throws {
        try await run { connection in
            _ = try await connection.query(
                "DELETE FROM reshard_meta_active_migration WHERE slot = 1 AND id = \(id)", logger: self.logger)
        }
    }

    public func migrations() async throws -> [(id: String, journal: String)] {
        try await run { connection in
            var all: [(id: String, journal: String)] = []
            let rows = try await connection.query(
                "SELECT id, journal, plan FROM reshard_meta_migrations ORDER BY seq", logger: self.logger)
            for try await (id, journal, plan) in rows.decode((String, String, String?).self) {
                all.append((id, plan.map { MigrationJournalText.joined(plan: $0, progress: journal) } ?? journal))
            }
            return all
        }
    }
}
