import HTTPTypes

extension HTTPField.Name {
    /// The field names Reshard spells out. Each is an RFC 9110 token, for which the failable
    /// initializer cannot fail (`HTTPFieldNameTests` checks every one): the fallback is never
    /// taken, and no force unwrap is needed.
    private static func token(_ name: String) -> HTTPField.Name { HTTPField.Name(name) ?? .via }

    static let reshardGeneration = token("Reshard-Generation")
    static let reshardLayoutGeneration = token("Reshard-Layout-Generation")
    static let lastEventID = token("Last-Event-ID")
    /// Tells a buffering proxy (nginx) to pass an event stream on as it is written.
    static let accelBuffering = token("X-Accel-Buffering")
    static let referrerPolicy = token("Referrer-Policy")

    static let reshardNames: [HTTPField.Name] = [reshardGeneration, reshardLayoutGeneration, lastEventID, accelBuffering, referrerPolicy]
}
