// vineyard-csi: StoreBackend
// BackendError.swift: why a backend operation failed.

public import POSIXCore

/// Why a backend operation failed: the errno a file system reports for it, and the
/// backend's own error for logs and callers that tell backends apart.
public struct BackendError: Error, Sendable, CustomStringConvertible {
    /// The errno for a file system request (`ENOSPC`, `ENOENT`, `ENOTCONN` while a vineyardd is
    /// unreachable, `EIO`, …).
    public var errno: Errno
    /// The backend's error (`StoreError`, `VineyardClientError`).
    public var underlying: any Error & Sendable

    public init(errno: Errno, underlying: any Error & Sendable) {
        self.errno = errno
        self.underlying = underlying
    }

    public var description: String { "\(underlying)" }
}
