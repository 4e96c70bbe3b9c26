import ReshardCore
import Synchronization
import Testing

@testable import ReshardEngine

/// `RowImage.throughLookup`, the reading of a new layout that the canary and the relayout
/// verifier judge it by, against scripted storage: each read answers what a store would at
/// that moment of a write that lands between the reads.
@Suite struct LookupImageTests {
    let table = TableName("kv__l2")!
    let lookup = TableName("kv__l2_pk")!

    func entry(key: String?, previous: String?, version: UInt64) -> StoredRow {
        LookupEntry(key: key, previous: previous, version: version).row(table: lookup, pk: "a95")
    }

    func slot(_ key: String, version: UInt64, body: String?) -> StoredRow {
        StoredRow(table: table, pk: LookupEntry.slot(pk: "a95", key: key), shardKey: key, version: version, body: body)
    }

    /// The race the canary once reported as corruption: the entry names a move from g1 to g2 at
    /// version 7; the row is not at g2 yet when read there, and the old place already holds the
    /// mover's tombstone when read next. The pass is read again and answers the landed row.
    @Test func aMoveThatLandsBetweenTheReadsIsReadAgainNotDamage() async throws {
        let passes = Mutex(0)
        let moving = entry(key: "g2", previous: "g1", version: 7)
        let image = try await RowImage.throughLookup(
            "a95",
            readEntry: {
                passes.withLock { $0 += 1 }
                return moving
            },
            readSlot: { key in
                let landed = passes.withLock { $0 } > 1
                switch key {
                case "g2": return landed ? slot("g2", version: 7, body: #"{"g":"g2"}"#) : nil
                default: return slot("g1", version: 7, body: nil)
                }
            })
        #expect(image == RowImage(pk: "a95", version: 7, body: #"{"g":"g2"}"#))
        #expect(passes.withLock { $0 } == 2)
    }

    /// A row that moved on again after its entry was read (a newer version at the entry's key)
    /// is read again from the entry too.
    @Test func aRowNewerThanItsEntryIsReadAgain() async throws {
        let passes = Mutex(0)
        let image = try await RowImage.throughLookup(
            "a95",
            readEntry: {
                let pass = passes.withLock {
                    $0 += 1; return $0
                }
                return pass == 1 ? entry(key: "g2", previous: nil, version: 7) : entry(key: "g2", previous: nil, version: 9)
            },
            readSlot: { _ in slot("g2", version: 9, body: #"{"v":9}"#) })
        #expect(image == RowImage(pk: "a95", version: 9, body: #"{"v":9}"#))
    }

    /// A row that never stops moving is an error after the attempts, never an image that a
    /// comparison would call corrupt.
    @Test func aRowThatNeverSettlesIsAnErrorNotAnImage() async throws {
        let passes = Mutex(0)
        await #expect(throws: LayoutError.self) {
            _ = try await RowImage.throughLookup(
                "a95", attempts: 3,
                readEntry: {
                    passes.withLock { $0 += 1 }
                    return entry(key: "g2", previous: nil, version: 7)
                },
                readSlot: { _ in slot("g2", version: 8, body: "{}") })
        }
        #expect(passes.withLock { $0 } == 3)
    }

    /// Damage stays damage (an image no honest row equals), and a finished delete reads as the
    /// delete's version, each from one pass.
    @Test func damageAndFinishedDeletesAreAnsweredAtOnce() async throws {
        let damaged = try await RowImage.throughLookup(
            "a95", readEntry: { StoredRow(table: lookup, pk: "a95", shardKey: "a95", version: 4, body: "not an entry") },
            readSlot: { _ in
                Issue.record("no slot is read for a damaged entry"); return nil
            })
        #expect(damaged == RowImage(pk: "a95", version: 0, body: "?"))
        let deleted = try await RowImage.throughLookup(
            "a95", readEntry: { StoredRow(table: lookup, pk: "a95", shardKey: "a95", version: 6, body: nil) },
            readSlot: { _ in nil })
        #expect(deleted == RowImage(pk: "a95", version: 5, body: nil))
    }
}
