/// Jump consistent hash (Lamping and Veach, 2014): a key's bucket among `buckets` without any
/// table. Growing from n to n + 1 buckets moves exactly the keys that land in the new bucket.
///
/// Reshard does not route by it: buckets are not hash ranges, so it cannot compile into a shard
/// map (every placement must, for fences and range moves). It is the benchmarks' reference for
/// movement and balance.
public enum JumpHash {
    /// The bucket, `0..<buckets`, of a 64-bit key.
    public static func bucket(_ key: UInt64, buckets: Int) -> Int {
        precondition(buckets > 0, "jump hash needs at least one bucket")
        var key = key
        var bucket: Int64 = -1
        var next: Int64 = 0
        while next < Int64(buckets) {
            bucket = next
            // The paper's 64-bit linear congruential step, then a jump whose length is drawn
            // from the top 31 bits.
            key = key &* 2_862_933_555_777_941_757 &+ 1
            next = Int64(Double(bucket + 1) * (Double(UInt64(1) << 31) / Double((key >> 33) + 1)))
        }
        return Int(bucket)
    }
}
