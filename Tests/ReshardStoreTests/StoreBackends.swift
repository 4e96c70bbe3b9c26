import Foundation
import ReshardCore
import ReshardStore
import Testing

/// The backends every conformance test runs on. A backend joins the suite by adding a case here.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite

    var testDescription: String { rawValue }

    /// A fresh, empty shard store of this backend, removed by `cleanup`.
    func makeShard(_ name: String = "s1") throws -> (store: any ShardStore, cleanup: @Sendable () -> Void) {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            let store = try SQLiteShardStore(shardID: ShardID(name)!, path: folder.path + "/\(name).sqlite")
            return (store, { folder.remove() })
        }
    }

    /// A fresh, empty metadata store of this backend.
    func makeMetadata() throws -> (store: any MetadataStore, cleanup: @Sendable () -> Void) {
        switch self {
        case .sqlite:
            let folder = try TemporaryFolder()
            return (try SQLiteMetadataStore(path: folder.path + "/meta.sqlite"), { folder.remove() })
        }
    }
}

/// A folder under the system temporary directory, unique per call.
struct TemporaryFolder: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "reshard-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
