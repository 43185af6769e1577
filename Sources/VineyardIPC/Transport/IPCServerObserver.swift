// vineyard-csi: VineyardIPC
// IPCServerObserver.swift: telling a process-wide observer about the connections and requests
// every IPCServer of the process serves, for metrics.

import Synchronization

/// Receives the connections and requests of every ``IPCServer`` in this process.
///
/// Called on the connection's thread: it must be cheap and must not block.
public protocol IPCServerObserver: Sendable {
    /// A client connected and was admitted.
    func connectionOpened()
    /// An admitted connection ended.
    func connectionClosed()
    /// One request was answered.
    ///
    /// - Parameters:
    ///   - request: the request, nil when the frame was not a request the codec understands.
    ///   - failed: whether the answer was an error frame.
    ///   - duration: from the frame's arrival to the reply's sending.
    func requestServed(_ request: IPCRequest?, failed: Bool, duration: Duration)
}

/// The observer of this process's vineyard sockets: one for all servers, installed by the
/// executable (servers are created per volume, deep inside the driver).
public enum IPCServerObservation {
    private final class Installed: Sendable {
        let observer: any IPCServerObserver
        init(_ observer: any IPCServerObserver) { self.observer = observer }
    }

    /// Read on every request: a lock-free load, no lock shared by the serving threads.
    private static let installed = AtomicLazyReference<Installed>()

    /// Installs the observer of this process, once: the first one stays.
    ///
    /// - Returns: whether `observer` is the one installed.
    @discardableResult
    public static func install(_ observer: any IPCServerObserver) -> Bool {
        let candidate = Installed(observer)
        return installed.storeIfNil(candidate) === candidate
    }

    static var observer: (any IPCServerObserver)? { installed.load()?.observer }
}
