/// One incoming unary call.
public struct UnaryRequest: Sendable {
    /// The full gRPC method path, such as `/csi.v1.Identity/Probe`.
    public var method: String
    /// The serialized request message.
    public var payload: [UInt8]
    /// When the client stops waiting, or `nil` when it set no deadline.
    public var deadline: ContinuousClock.Instant?

    /// Creates a request (the server does this; tests may too).
    ///
    /// - Parameters:
    ///   - method: the full gRPC method path.
    ///   - payload: the serialized request message.
    ///   - deadline: the client's deadline, if any.
    public init(method: String, payload: [UInt8], deadline: ContinuousClock.Instant? = nil) {
        self.method = method
        self.payload = payload
        self.deadline = deadline
    }
}

/// Answers the unary calls a ``UnaryServer`` receives.
///
/// Every call, whatever its method, reaches ``handle(_:)``; answering unknown methods with
/// ``StatusCode/unimplemented`` is the handler's job. Calls run concurrently, each in its own task.
public protocol UnaryHandler: Sendable {
    /// Handles one call.
    ///
    /// - Parameter request: the method, payload and deadline of the call.
    /// - Returns: the serialized response, or the status to fail the call with.
    func handle(_ request: UnaryRequest) async -> Result<[UInt8], RPCStatus>
}
