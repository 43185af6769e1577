/// A non-OK outcome of a call: a ``StatusCode`` and a human-readable message.
///
/// Handlers return it as the failure of their `Result`; clients throw it.
public struct RPCStatus: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status code. A failure carrying ``StatusCode/ok`` is sent as ``StatusCode/unknown``.
    public var code: StatusCode
    /// The message sent in the `grpc-message` trailer; may be empty.
    public var message: String

    /// Creates a status.
    ///
    /// - Parameters:
    ///   - code: the status code.
    ///   - message: what went wrong, for the caller to read.
    public init(_ code: StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `CODE: message`, or just `CODE` when the message is empty.
    public var description: String {
        message.isEmpty ? code.description : "\(code): \(message)"
    }
}
