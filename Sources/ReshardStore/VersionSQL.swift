/// SQL that compares versions in their unsigned order, shared by the SQL backends. A version is
/// stored as the signed 64-bit integer of its bit pattern, so `>` alone would rank every version
/// from 2^63 on below 0 (a newer row refused, an older one let through). A negative stored value
/// is the larger unsigned one; between two of the same sign the signed order is the unsigned one.
enum VersionSQL {
    /// `version` is strictly newer than `other` (both SQL expressions of stored versions).
    static func newer(_ version: String, than other: String) -> String {
        "((\(version) < 0) > (\(other) < 0) OR ((\(version) < 0) = (\(other) < 0) AND \(version) > \(other)))"
    }
}
