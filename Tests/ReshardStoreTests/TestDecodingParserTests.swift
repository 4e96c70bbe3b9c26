import ReshardCore
import Testing

@testable import ReshardStore

/// The reader of logical decoding's text: a misread quote or null would replicate a wrong row.
@Suite struct TestDecodingParserTests {
    @Test func readsRowImagesWithQuotesNullsAndNumbers() throws {
        let insert = try TestDecodingParser.parse(
            "table public.r_users: INSERT: pk[text]:'a b' skey[text]:'it''s' h[bigint]:-5 version[bigint]:42 body[text]:'{\"x\":\"it''s\"}' digest[bigint]:7"
        )
        #expect(
            insert == .row(StoredRow(table: TableName("users")!, pk: "a b", shardKey: "it's", version: 42, body: "{\"x\":\"it's\"}")))
        let tombstone = try TestDecodingParser.parse(
            "table public.r_kv: UPDATE: pk[text]:'k' skey[text]:'k' h[bigint]:1 version[bigint]:9 body[text]:null digest[bigint]:3")
        #expect(tombstone == .row(StoredRow(table: TableName("kv")!, pk: "k", shardKey: "k", version: 9, body: nil)))
    }

    @Test func deletesOtherTablesAndMarkersAreNotChanges() throws {
        #expect(try TestDecodingParser.parse("table public.r_kv: DELETE: pk[text]:'k'") == .ignored)
        #expect(try TestDecodingParser.parse("table public._reshard_fences: INSERT: range_start[bigint]:1") == .ignored)
        #expect(try TestDecodingParser.parse("BEGIN") == .begin)
        #expect(try TestDecodingParser.parse("COMMIT (at 2026-11-21 10:23:56.90433+00)") == .commit(atMillis: 1_795_256_636_904))
        #expect(throws: StoreError.self) { try TestDecodingParser.parse("table public.r_kv: INSERT: pk[text]:'unterminated") }
    }

    @Test func commitTimesHonourTheirOffset() throws {
        #expect(try TestDecodingParser.timestampMillis("1970-01-01 00:00:01.5+00") == 1_500)
        #expect(try TestDecodingParser.timestampMillis("1970-01-01 02:00:00+02") == 0)
        #expect(try TestDecodingParser.timestampMillis("1970-01-01 00:00:00-05:30") == 19_800_000)
    }
}
