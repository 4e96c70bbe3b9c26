/// A migration's journal kept as two texts: its plan (both shard maps, which at 1,000 shards are
/// 11 MB together) written once, and the rest, which changes every copy round and is small. The
/// stores hand the two back joined, so readers see one JSON object as before.
public enum MigrationJournalText {
    /// `{"plan":<plan>,<the members of progress>}`. A `progress` that is not a JSON object's
    /// text (the stores never write one, so the row was damaged) is returned as it is: decoding
    /// it fails for this migration alone, with the decoder's reason, while the others read.
    public static func joined(plan: String, progress: String) -> String {
        var members = Substring(progress)
        guard members.first == "{", members.last == "}" else { return progress }
        members.removeFirst()
        return "{\"plan\":" + plan + (members == "}" ? "" : ",") + members
    }
}
