import Hummingbird
import ReshardAPI

/// An answer of the API: `value` encoded once, by ReshardAPI's rules, which its clients decode.
func jsonResponse(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
    var body = ByteBuffer(bytes: try API.encode(value))
    body.writeString("\n")
    return jsonResponse(status, body: body)
}

/// A hand-built JSON answer: only for those that embed a client's row body verbatim (`JSONText`).
func jsonTextResponse(_ status: HTTPResponse.Status, _ json: String) -> Response {
    jsonResponse(status, body: ByteBuffer(string: json + "\n"))
}

/// A JSON response with the right content type. A trailing newline keeps `curl` output readable.
private func jsonResponse(_ status: HTTPResponse.Status, body: ByteBuffer) -> Response {
    Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: body))
}
