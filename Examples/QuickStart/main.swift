import Foundation
import ReshardClient

struct User: Codable, Sendable {
    var name: String
    var visits: Int
}

let token = ProcessInfo.processInfo.environment["RESHARD_ADMIN_TOKEN"]
let reshard = try ReshardClient(.init(url: "http://127.0.0.1:7420", adminToken: token))
_ = try? await reshard.createTable("users", primaryKey: "id")  // 409 when it exists already
try await reshard.put(User(name: "Ada", visits: 0), table: "users", pk: "ada")
// Read-modify-write: the write names the version read (If-Match) and starts again if another
// writer got there first, so no increment is ever lost, also while the row's range moves.
try await reshard.update(User.self, table: "users", pk: "ada") { user in
    user.map { User(name: $0.name, visits: $0.visits + 1) }
}
let ada = try await reshard.get(User.self, table: "users", pk: "ada")
print("\(ada?.value.name ?? "?"): \(ada?.value.visits ?? 0) visits, version \(ada?.version ?? 0)")
try await reshard.shutdown()
