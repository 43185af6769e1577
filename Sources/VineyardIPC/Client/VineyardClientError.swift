// vineyard-csi: VineyardIPC
// VineyardClientError.swift: why a call to a vineyardd failed, and what errno/CSI code that is.

public import POSIXCore

/// A failed call of ``VineyardClient``.
///
/// The cases separate what callers must treat differently: an unreachable or vanished server
/// (the driver reports an outage and reconnects later), a server that refused the request (its
/// status code says why, e.g. out of memory), and a reply this client cannot understand.
public enum VineyardClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The socket could not be connected (vineyardd not running, wrong path).
    case unreachable(path: String, IPCSocketError)
    /// The connection failed or closed during a call (vineyardd stopped or restarted). The
    /// client is unusable afterwards; connect again.
    case disconnected(IPCChannelError)
    /// vineyardd answered with an error frame.
    case refused(IPCError)
    /// The reply lacked something the protocol promises (a field, a descriptor).
    case protocolViolation(String)

    /// Whether the server is gone (as opposed to refusing one request).
    public var isOutage: Bool {
        switch self {
        case .unreachable, .disconnected: return true
        case .refused, .protocolViolation: return false
        }
    }

    /// The errno a file system returns for this failure: `ENOTCONN` while vineyardd is down
    /// (as FUSE mounts whose server died answer), `ENOSPC` when it is out of memory, `ENOENT`
    /// for a missing object, `EIO` otherwise.
    public var errno: Errno {
        switch self {
        case .unreachable, .disconnected: return .notConnected
        case .refused(let error):
            switch error.code {
            case .notEnoughMemory: return .noSpace
            case .objectNotExists: return .noEntry
            default: return .io
            }
        case .protocolViolation: return .io
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let path, let error): return "vineyardd at \(path) is unreachable: \(error)"
        case .disconnected(let error): return "the connection to vineyardd failed: \(error)"
        case .refused(let error): return "vineyardd refused the request: \(error)"
        case .protocolViolation(let what): return "unexpected reply from vineyardd: \(what)"
        }
    }
}
