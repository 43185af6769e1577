internal import CGRPCShim
internal import Synchronization

/// A gRPC server for unary calls, on a unix socket or TCP, that hands every call to one
/// ``UnaryHandler``.
///
/// The server listens as soon as it is created. Each call runs in its own unstructured task;
/// gRPC's threads never wait for a handler. Stop it with ``shutdown(gracePeriod:)``; dropping the
/// last reference stops it too, with no grace period.
public final class UnaryServer: Sendable {
    /// The endpoint the server listens on. For a TCP endpoint with port 0 this carries the port
    /// the system chose.
    public let endpoint: Endpoint

    private let server: ShimHandle
    private let handlerBox: HandlerContext

    /// Starts a server.
    ///
    /// For a unix socket, a stale socket file at the path is removed first (one a live server is
    /// still accepting on is not); any other kind of file there is refused. Once listening, the
    /// socket file gets the permission bits `socketMode`.
    ///
    /// - Parameters:
    ///   - endpoint: where to listen.
    ///   - socketMode: permission bits for the unix socket file, such as `0o600` or `0o660`;
    ///     ignored for TCP.
    ///   - handler: answers every call.
    /// - Throws: ``RPCStatus`` when the server cannot listen: ``StatusCode/alreadyExists`` (address in
    ///   use, or a non-socket file at the path), ``StatusCode/permissionDenied``,
    ///   ``StatusCode/notFound`` (missing directory), ``StatusCode/invalidArgument`` or
    ///   ``StatusCode/internalError``; the message names the address and the reason.
    public init(endpoint: Endpoint, socketMode: UInt32 = 0o660, handler: any UnaryHandler) throws(RPCStatus) {
        let context = HandlerContext(Unmanaged.passRetained(HandlerBox(handler)))
        var server: OpaquePointer?
        var error: UnsafeMutablePointer<CChar>?
        let code = cgrpc_server_create(
            endpoint.shimAddress, socketMode, unaryCallTrampoline, context.box.toOpaque(), &server, &error)
        guard code == 0, let server else {
            context.box.release()
            throw code == 0 ? RPCStatus(.internalError, takeShimString(error)) : shimStatus(code, error)
        }
        self.server = ShimHandle(pointer: server)
        self.handlerBox = context
        if case .tcp(let host, _) = endpoint {
            self.endpoint = .tcp(host: host, port: Int(cgrpc_server_port(server)))
        } else {
            self.endpoint = endpoint
        }
    }

    deinit {
        // Shuts down with no grace if still running; after this the handler is never called again.
        cgrpc_server_destroy(server.pointer)
        handlerBox.box.release()
    }

    /// Stops the server and blocks until it has stopped.
    ///
    /// New calls are refused at once; calls in flight get `gracePeriod` to finish, after which any
    /// still unanswered are failed with ``StatusCode/unavailable``. The unix socket file is removed.
    /// Idempotent: a second call (or a concurrent one) waits for the first to complete.
    ///
    /// This blocks its thread for up to `gracePeriod`; call it from a signal handler's queue or a
    /// thread of your own rather than from a latency-sensitive task.
    ///
    /// - Parameter gracePeriod: how long calls in flight may still take.
    public func shutdown(gracePeriod: Duration) {
        let milliseconds = gracePeriod <= .zero ? 0 : gracePeriod.shimMilliseconds
        cgrpc_server_shutdown(server.pointer, milliseconds)
    }

    /// Blocks until the server has been shut down.
    ///
    /// Call it from a thread that may block (a `Thread`, a `DispatchQueue`, or `main` before any
    /// async work), not from the Swift concurrency pool.
    public func wait() {
        cgrpc_server_wait(server.pointer)
    }
}

// MARK: - C callback

/// What the C context pointer refers to.
private final class HandlerBox: Sendable {
    let handler: any UnaryHandler

    init(_ handler: any UnaryHandler) {
        self.handler = handler
    }
}

/// The retained context handed to C; released once, in the server's `deinit` (or on failed start).
private struct HandlerContext: @unchecked Sendable {
    let box: Unmanaged<HandlerBox>

    init(_ box: Unmanaged<HandlerBox>) {
        self.box = box
    }
}

/// One call waiting for its answer. The shim keeps it valid until `respond` is called, exactly once.
private struct PendingCall: @unchecked Sendable {
    let call: OpaquePointer

    func respond(with result: Result<[UInt8], RPCStatus>) {
        switch result {
        case .success(let bytes):
            bytes.withUnsafeBufferPointer { buffer in
                cgrpc_call_respond(call, 0, nil, buffer.baseAddress, buffer.count)
            }
        case .failure(let status):
            let code = status.code == .ok ? StatusCode.unknown : status.code
            status.message.withCString { message in
                cgrpc_call_respond(call, code.rawValue, message, nil, 0)
            }
        }
    }
}

/// Runs on a gRPC thread: copies the request, starts a task for the handler, returns at once.
private let unaryCallTrampoline: cgrpc_unary_handler_fn = { context, call, method, payload, length, deadline in
    guard let context, let call else { return }
    let handler = Unmanaged<HandlerBox>.fromOpaque(context).takeUnretainedValue().handler
    let pending = PendingCall(call: call)
    let request = UnaryRequest(
        method: method.map { String(cString: $0) } ?? "",
        payload: length > 0 ? Array(UnsafeBufferPointer(start: payload, count: length)) : [],
        deadline: .fromShimDeadline(deadline)
    )
    Task {
        pending.respond(with: await handler.handle(request))
    }
}
