public import GRPCTransport

/// Receives one call per CSI call the router answered, for metrics.
///
/// Called on the task that served the call, after the reply was built: it must not block.
public protocol CSICallObserver: Sendable {
    /// - Parameters:
    ///   - method: the CSI method, e.g. `NodeStageVolume`; `unimplemented` for a method this
    ///     router does not serve (its name comes from the caller and is not kept).
    ///   - code: the status the call was answered with (``StatusCode/ok`` on success).
    ///   - duration: from the request's arrival at the router to its reply.
    func csiCallCompleted(method: String, code: StatusCode, duration: Duration)
}
