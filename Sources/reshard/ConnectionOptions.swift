import ArgumentParser

/// Where the router is and how to authenticate, shared by every client command.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The router's base URL.")
    var url = "http://127.0.0.1:7420"

    @Option(help: "The data folder whose admin-token file to read.")
    var data = "./reshard-data"

    @Option(help: "The admin bearer token (default: $RESHARD_ADMIN_TOKEN, then <data>/admin-token).")
    var token: String?

    @Option(name: .customLong("ca-file"), help: "A PEM file of the certificate authorities to trust for an https URL.")
    var caFile: String?

    func connect() async throws -> AdminAPI {
        let token = try AdminToken.resolve(explicit: token, file: data + "/admin-token", createIfMissing: false)
        return try await AdminAPI.connect(url: url, token: token, caFile: caFile)
    }
}
