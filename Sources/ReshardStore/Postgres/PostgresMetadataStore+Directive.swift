import Foundation
import PostgresNIO
import ReshardCore

/// The routers' directive and their reports.
extension PostgresMetadataStore {
    public func directive() async throws -> String? {
        try await run { connection in
            try await Self.first(String.self, connection.query("SELECT body FROM reshard_meta_directive WHERE id = 1", logger: self.logger))
        }
    }

    public func saveDirective(_ text: String?) async throws {
        try await write(notifying: .directive) { connection in
            if let text {
                try await connection.query(
                    """
                    INSERT INTO reshard_meta_directive(id, body) VALUES(1, \(text))
                    ON CONFLICT (id) DO UPDATE SET body = excluded.body
                    """, logger: self.logger)
            } else {
                try await connection.query("DELETE FROM reshard_meta_directive", logger: self.logger)
            }
        }
    }

    public func saveReport(router: String, report: String) async throws {
        try await run { connection in
            // The server's clock: every router's report is stamped by one clock, so their ages
            // compare even when the routers' hosts disagree about the time.
            _ = try await connection.query(
                """
                INSERT INTO reshard_meta_router_reports(router, report, saved_ms)
                VALUES(\(router), \(report), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                ON CONFLICT (router) DO UPDATE SET report = excluded.report, saved_ms = excluded.saved_ms
                """, logger: self.logger)
        }
    }

    public func reports() async throws -> [RouterReport] {
        try await run { connection in
            var reports: [RouterReport] = []
            let rows = try await connection.query(
                "SELECT router, report, saved_ms FROM reshard_meta_router_reports ORDER BY router", logger: self.logger)
            for try await (router, report, saved) in rows.decode((String, String, Int64).self) {
                reports.append(RouterReport(router: router, report: report, savedAtMillis: UInt64(max(0, saved))))
            }
            return reports
        }
    }
}
