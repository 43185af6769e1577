// vineyard-csi: VineyardSocket
// VineyardSocketServer.swift: a vineyard socket for one volume of a backend.

import Glibc
import POSIXCore
import SharedMemoryStore
public import StoreBackend
public import VineyardIPC

/// Serves vineyard's IPC protocol (what `vineyard.connect(socket)` of the 0.24.x client
/// expects) on a Unix socket, from a volume's backend and limited to one ``VolumeScope``.
///
/// The unmodified vineyard Python client works against it: `put`/`get` of numpy arrays and
/// pandas frames, names, listing, deletion; reads are zero-copy (the client maps the store's
/// arena, which the server passes with `SCM_RIGHTS`).
public final class VineyardSocketServer: Sendable {
    public let scope: VolumeScope
    public let socketPath: String
    private let server: IPCServer

    /// Binds `socketPath` and starts serving the volume `scope` from `backend`.
    ///
    /// From the embedded store, blobs are handed out zero-copy from the store's arena (the
    /// client maps it, passed with `SCM_RIGHTS`). From a vineyardd, each client connection is
    /// relayed over a connection of its own to vineyardd, and the client maps vineyardd's
    /// shared memory itself; vineyardd need not answer now (clients that connect while it is
    /// down get an `IOError` reply to their registration).
    ///
    /// - Parameters:
    ///   - backend: where the volume's objects live.
    ///   - scope: the volume the socket exposes.
    ///   - socketPath: where to bind (a stale file there is replaced).
    ///   - advertisedSocket: the path reported to clients as `ipc_socket`; defaults to `socketPath`.
    ///   - namesChanged: called after a request bound, removed or deleted names or objects of
    ///     the volume (the file system recounts its usage).
    /// - Throws: ``IPCSocketError`` when the socket cannot be bound.
    public init(
        backend: any ObjectBackend, scope: VolumeScope, socketPath: String, advertisedSocket: String? = nil,
        namesChanged: @escaping @Sendable () -> Void = {}
    ) throws(IPCSocketError) {
        guard let sessions = backend as? any SessionSource else {
            throw IPCSocketError("serve \(type(of: backend))", errno: .notSupported)
        }
        let makeSession = sessions.sessionMaker(
            scope: scope, advertisedSocket: advertisedSocket ?? socketPath, namesChanged: namesChanged)
        self.scope = scope
        self.socketPath = socketPath
        self.server = try IPCServer(configuration: IPCServer.Configuration(socketPath: socketPath)) { channel in
            makeSession(channel.peer.pid)
        }
        makeSession.server = server
    }

    /// Connections currently open.
    public var connectionCount: Int { server.connectionCount }

    /// Stops serving: closes every connection (releasing what each held) and removes the
    /// socket file.
    @discardableResult
    public func stop(timeoutSeconds: Double = 10) -> Bool {
        server.stop(timeoutSeconds: timeoutSeconds)
    }
}

/// A backend a volume's socket can serve: it makes the session of each client connection.
protocol SessionSource: ObjectBackend {
    func sessionMaker(
        scope: VolumeScope, advertisedSocket: String, namesChanged: @escaping @Sendable () -> Void
    ) -> SessionMaker
}

/// Makes the session of a new connection, given the client's pid.
final class SessionMaker: @unchecked Sendable {
    private let make: @Sendable (SessionMaker, Int32) -> any IPCConnectionHandler
    /// The server, for sessions that report its connection count. Set right after the server
    /// starts; a session created before that reports 0.
    weak var server: IPCServer?

    init(_ make: @escaping @Sendable (SessionMaker, Int32) -> any IPCConnectionHandler) {
        self.make = make
    }

    func callAsFunction(_ peerPID: Int32) -> any IPCConnectionHandler {
        make(self, peerPID)
    }
}

extension EmbeddedBackend: SessionSource {
    func sessionMaker(
        scope: VolumeScope, advertisedSocket: String, namesChanged: @escaping @Sendable () -> Void
    ) -> SessionMaker {
        let store = store
        let info = IPCServerInfo(instanceID: store.configuration.instanceID, ipcSocket: advertisedSocket)
        let streams = StreamTable()
        return SessionMaker { maker, peerPID in
            VolumeSession(
                client: ScopedClient(scope: scope, peerPID: peerPID),
                backend: StoreConnection(
                    store: store, scope: scope, info: info,
                    connectionCount: { [weak maker] in maker?.server?.connectionCount ?? 0 }),
                streams: streams, namesChanged: namesChanged)
        }
    }
}

extension VineyarddBackend: SessionSource {
    func sessionMaker(
        scope: VolumeScope, advertisedSocket: String, namesChanged: @escaping @Sendable () -> Void
    ) -> SessionMaker {
        let objects = ProxyVolumeObjects()
        let vineyarddSocket = connection.socketPath
        let streams = StreamTable()  // unused: vineyardd serves the streams
        return SessionMaker { _, peerPID in
            VolumeSession(
                client: ScopedClient(scope: scope, peerPID: peerPID),
                backend: VineyarddRelay(
                    vineyarddSocket: vineyarddSocket, scope: scope, advertisedSocket: advertisedSocket, objects: objects),
                streams: streams, namesChanged: namesChanged)
        }
    }
}
