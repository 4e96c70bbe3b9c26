import ReshardCore

/// Reads the text that PostgreSQL's built-in `test_decoding` output plugin prints for each
/// change (`table public.r_users: INSERT: pk[text]:'a' … version[bigint]:5 body[text]:'{}'`).
///
/// Only inserts and updates of data tables (`r_<name>`) are changes: physical deletes are
/// cleanup, garbage collection or repair of a shard that is not the owner yet, and must never
/// replicate (as with SQLite, whose changelog triggers fire on INSERT and UPDATE only).
enum TestDecodingParser {
    /// What one output line is.
    enum Line: Equatable {
        case begin
        /// A commit and its time, milliseconds since 1970.
        case commit(atMillis: UInt64)
        /// A row image of a data table.
        case row(StoredRow)
        /// Anything else: other tables, deletes, truncates, messages.
        case ignored
    }

    static func parse(_ line: String) throws -> Line {
        if line.hasPrefix("BEGIN") { return .begin }
        if line.hasPrefix("COMMIT") { return .commit(atMillis: try commitMillis(line)) }
        guard line.hasPrefix("table public.r_") else { return .ignored }
        let utf8 = Array(line.utf8)
        // "table public.r_NAME: KIND: columns"
        guard let nameEnd = utf8.firstIndex(of: UInt8(ascii: ":")) else { throw malformed(line) }
        let name = String(decoding: utf8[("table public.r_".utf8.count)..<nameEnd], as: UTF8.self)
        var index = nameEnd + 2
        let kindStart = index
        while index < utf8.count, utf8[index] != UInt8(ascii: ":") { index += 1 }
        let kind = String(decoding: utf8[kindStart..<min(index, utf8.count)], as: UTF8.self)
        guard kind == "INSERT" || kind == "UPDATE" else { return .ignored }
        guard let table = TableName(name) else { throw malformed(line) }
        index += 2
        var columns: [String: String?] = [:]
        while index < utf8.count {
            let (column, value, next) = try parseColumn(utf8, from: index, line: line)
            columns[column] = value
            index = next
        }
        guard case .some(.some(let pk)) = columns["pk"], case .some(.some(let shardKey)) = columns["skey"],
            case .some(.some(let versionText)) = columns["version"], let version = Int64(versionText),
            case .some(let body) = columns["body"]
        else { throw malformed(line) }
        if body == "unchanged-toast-datum" { throw StoreError.backend("a change of \(table)/\(pk) arrived without its body (TOAST)") }
        return .row(StoredRow(table: table, pk: pk, shardKey: shardKey, version: UInt64(bitPattern: version), body: body))
    }

    /// One `name[type]:value` and the index after it (and its separating space).
    private static func parseColumn(_ utf8: [UInt8], from start: Int, line: String) throws -> (String, String?, Int) {
        var index = start
        while index < utf8.count, utf8[index] != UInt8(ascii: "[") { index += 1 }
        guard index < utf8.count else { throw malformed(line) }
        let name = String(decoding: utf8[start..<index], as: UTF8.self)
        while index < utf8.count, utf8[index] != UInt8(ascii: "]") { index += 1 }
        index += 1
        guard index < utf8.count, utf8[index] == UInt8(ascii: ":") else { throw malformed(line) }
        index += 1
        if index < utf8.count, utf8[index] == UInt8(ascii: "'") {
            // A quoted literal; a quote inside it is doubled.
            var bytes: [UInt8] = []
            index += 1
            while index < utf8.count {
                if utf8[index] == UInt8(ascii: "'") {
                    if index + 1 < utf8.count, utf8[index + 1] == UInt8(ascii: "'") {
                        bytes.append(UInt8(ascii: "'"))
                        index += 2
                        continue
                    }
                    index += 1
                    return (name, String(decoding: bytes, as: UTF8.self), index + 1)
                }
                bytes.append(utf8[index])
                index += 1
            }
            throw malformed(line)
        }
        let valueStart = index
        while index < utf8.count, utf8[index] != UInt8(ascii: " ") { index += 1 }
        let token = String(decoding: utf8[valueStart..<index], as: UTF8.self)
        return (name, token == "null" ? nil : token, index + 1)
    }

    /// `COMMIT (at 2026-11-21 10:23:56.90433+00)`, as printed with `include-timestamp`.
    static func commitMillis(_ line: String) throws -> UInt64 {
        guard let open = line.firstIndex(of: "("), let close = line.lastIndex(of: ")") else { return 0 }
        let text = line[line.index(open, offsetBy: 4)..<close]
        return try timestampMillis(String(text))
    }

    /// Milliseconds since 1970 of a PostgreSQL `timestamptz` text (`YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM]`).
    static func timestampMillis(_ text: String) throws -> UInt64 {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) throws -> Int {
            guard range.upperBound <= bytes.count, let value = Int(String(decoding: bytes[range], as: UTF8.self)) else {
                throw StoreError.backend("unreadable commit time \(text)")
            }
            return value
        }
        let year = try number(0..<4)
        let month = try number(5..<7)
        let day = try number(8..<10)
        let seconds = try number(11..<13) * 3600 + number(14..<16) * 60 + number(17..<19)
        var index = 19
        var millis = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 100
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                millis += Int(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            let hours = try number((index + 1)..<(index + 3))
            let hasMinutes = bytes.count >= index + 6 && bytes[index + 3] == UInt8(ascii: ":")
            let minutes = hasMinutes ? try number((index + 4)..<(index + 6)) : 0
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let total = (days * 86_400 + seconds - offsetSeconds) * 1000 + millis
        return UInt64(max(0, total))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func malformed(_ line: String) -> StoreError {
        .backend("unreadable logical decoding output: \(line.prefix(200))")
    }
}
