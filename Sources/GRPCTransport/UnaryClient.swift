internal import CGRPCShim
internal import Synchronization

/// A gRPC client for unary calls over one channel (one connection, opened lazily).
///
/// Safe to share: any number of threads and tasks may call at once. A server that is not there
/// shows up as ``StatusCode/unavailable`` on the call, not at creation.
public final class UnaryClient: Sendable {
    /// Where the client connects.
    public let endpoint: Endpoint

    private let channel: ShimHandle

    /// Creates a client.
    ///
    /// - Parameter endpoint: the server's endpoint.
    /// - Throws: ``RPCStatus`` with ``StatusCode/invalidArgument`` when the endpoint cannot be used.
    public init(endpoint: Endpoint) throws(RPCStatus) {
        var channel: OpaquePointer?
        var error: UnsafeMutablePointer<CChar>?
        let code = cgrpc_channel_create(endpoint.shimAddress, &channel, &error)
        guard code == 0, let channel else {
            throw code == 0 ? RPCStatus(.internalError, takeShimString(error)) : shimStatus(code, error)
        }
        self.endpoint = endpoint
        self.channel = ShimHandle(pointer: channel)
    }

    deinit {
        cgrpc_channel_destroy(channel.pointer)
    }

    /// Makes a unary call and blocks the calling thread until it completes.
    ///
    /// - Parameters:
    ///   - method: the full method path, such as `/csi.v1.Identity/Probe`.
    ///   - request: the serialized request.
    ///   - timeout: the deadline, measured from now; `nil` for none.
    /// - Returns: the serialized response.
    /// - Throws: the call's ``RPCStatus`` when it is not OK (``StatusCode/unavailable`` when nothing
    ///   listens, ``StatusCode/deadlineExceeded`` when the timeout passes).
    public func call(_ method: String, _ request: [UInt8], timeout: Duration? = nil) throws(RPCStatus) -> [UInt8] {
        var response: UnsafeMutablePointer<UInt8>?
        var responseLength = 0
        var code: Int32 = 0
        var message: UnsafeMutablePointer<CChar>?
        let milliseconds = timeout?.shimMilliseconds ?? 0
        method.withCString { method in
            request.withUnsafeBufferPointer { request in
                _ = cgrpc_channel_call(
                    channel.pointer, method, request.baseAddress, request.count, milliseconds,
                    &response, &responseLength, &code, &message)
            }
        }
        defer { cgrpc_free(response) }
        guard code == 0 else { throw shimStatus(code, message) }
        _ = takeShimString(message)
        guard let response, responseLength > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: response, count: responseLength))
    }

    /// Makes a unary call without blocking any thread: the task suspends until gRPC completes it.
    ///
    /// Cancelling the task cancels the call, which then fails with ``StatusCode/cancelled``.
    ///
    /// - Parameters:
    ///   - method: the full method path, such as `/csi.v1.Identity/Probe`.
    ///   - request: the serialized request.
    ///   - timeout: the deadline, measured from now; `nil` for none.
    /// - Returns: the serialized response.
    /// - Throws: the call's ``RPCStatus`` when it is not OK.
    public func call(
        _ method: String,
        _ request: [UInt8],
        timeout: Duration? = nil
    ) async throws(RPCStatus) -> [UInt8] {
        if Task.isCancelled { throw RPCStatus(.cancelled, "the calling task was cancelled") }
        let pending = OutgoingCall()
        let milliseconds = timeout?.shimMilliseconds ?? 0
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<CallResult, Never>) in
                pending.start(
                    channel: channel, method: method, request: request, timeoutMilliseconds: milliseconds,
                    continuation: continuation)
            }
        } onCancel: {
            pending.cancel()
        }
        pending.release()
        return try result.get()
    }
}

// MARK: - Asynchronous calls

private typealias CallResult = Result<[UInt8], RPCStatus>

/// The completion's context: resumed exactly once by ``completionTrampoline``, which also
/// releases it.
private final class CompletionBox: Sendable {
    let continuation: CheckedContinuation<CallResult, Never>

    init(_ continuation: CheckedContinuation<CallResult, Never>) {
        self.continuation = continuation
    }
}

/// Owns the caller's reference to a shim call handle and makes cancellation race-free: the handle
/// is released only after the call completed and no `cancel` is using it.
private final class OutgoingCall: Sendable {
    private struct State {
        var handle: OpaquePointer?
        var cancelRequested = false
        var cancelsInFlight = 0
        var releaseRequested = false
    }

    private struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private let state = Mutex<State>(State())

    func start(
        channel: ShimHandle,
        method: String,
        request: [UInt8],
        timeoutMilliseconds: Int64,
        continuation: CheckedContinuation<CallResult, Never>
    ) {
        let context = Unmanaged.passRetained(CompletionBox(continuation)).toOpaque()
        let started = method.withCString { method in
            request.withUnsafeBufferPointer { request in
                cgrpc_channel_call_async(
                    channel.pointer, method, request.baseAddress, request.count, timeoutMilliseconds,
                    completionTrampoline, context)
            }
        }
        guard let started else { return }  // completion already ran with the error
        let handle = Handle(pointer: started)
        let cancelNow = state.withLock { state in
            state.handle = handle.pointer
            return state.cancelRequested
        }
        // Safe: the handle is released only after this function returns (see `release`).
        if cancelNow { cgrpc_client_call_cancel(handle.pointer) }
    }

    func cancel() {
        let handle: Handle? = state.withLock { state in
            state.cancelRequested = true
            guard let pointer = state.handle, !state.releaseRequested else { return nil }
            state.cancelsInFlight += 1
            return Handle(pointer: pointer)
        }
        guard let handle else { return }
        cgrpc_client_call_cancel(handle.pointer)
        let releaseNow = state.withLock { state in
            state.cancelsInFlight -= 1
            return state.releaseRequested && state.cancelsInFlight == 0 && state.handle != nil
        }
        if releaseNow { cgrpc_client_call_release(handle.pointer) }
    }

    /// Called once, after the continuation resumed.
    func release() {
        let handle: Handle? = state.withLock { state in
            state.releaseRequested = true
            guard let pointer = state.handle, state.cancelsInFlight == 0 else { return nil }
            return Handle(pointer: pointer)
        }
        if let handle { cgrpc_client_call_release(handle.pointer) }
    }
}

/// Runs on a gRPC thread (or inline when the call fails to start): copies the outcome and resumes.
private let completionTrampoline: cgrpc_completion_fn = { context, code, message, response, length in
    guard let context else { return }
    let box = Unmanaged<CompletionBox>.fromOpaque(context).takeRetainedValue()
    if code == 0 {
        let bytes = length > 0 ? Array(UnsafeBufferPointer(start: response, count: length)) : []
        box.continuation.resume(returning: .success(bytes))
    } else {
        let text = message.map { String(cString: $0) } ?? ""
        box.continuation.resume(returning: .failure(RPCStatus(StatusCode(rawValue: code), text)))
    }
}
