// vineyard-csi: VineyardSocket
// VineyardSocketServer.swift: a vineyard socket for one volume of an ObjectStore.

import VineyardIPC
import SharedMemoryStore

/// Serves vineyard's IPC protocol (what `vineyard.connect(socket)` of the 0.24.x client
/// expects) on a Unix socket, from an ``ObjectStore`` and limited to one ``VolumeScope``.
///
/// The unmodified vineyard Python client works against it: `put`/`get` of numpy arrays and
/// pandas frames, names, listing, deletion; reads are zero-copy (the client maps the store's
/// arena, which the server passes with `SCM_RIGHTS`).
public final class VineyardSocketServer: Sendable {
    public let scope: VolumeScope
    public let socketPath: String
    private let server: IPCServer

    /// Binds `socketPath` and starts serving.
    ///
    /// - Parameters:
    ///   - store: the store holding the volume.
    ///   - scope: the volume the socket exposes.
    ///   - socketPath: where to bind (a stale file there is replaced).
    ///   - advertisedSocket: the path reported to clients as `ipc_socket`; defaults to `socketPath`.
    ///   - namesChanged: called after a request bound, removed or deleted names or objects of
    ///     the volume (the file system recounts its usage).
    /// - Throws: ``IPCSocketError`` when the socket cannot be bound.
    public init(
        store: ObjectStore, scope: VolumeScope, socketPath: String, advertisedSocket: String? = nil,
        namesChanged: @escaping @Sendable () -> Void = {}
    ) throws(IPCSocketError) {
        let info = IPCServerInfo(instanceID: store.configuration.instanceID, ipcSocket: advertisedSocket ?? socketPath)
        let count = ConnectionCounter()
        self.scope = scope
        self.socketPath = socketPath
        self.server = try IPCServer(configuration: IPCServer.Configuration(socketPath: socketPath)) { channel in
            StoreSession(
                store: store, scope: scope, info: info, peerPID: channel.peer.pid,
                connectionCount: { count.server?.connectionCount ?? 0 }, namesChanged: namesChanged)
        }
        count.server = server
    }

    /// Binds `socketPath` and serves the volume from a vineyardd (cluster mode): each client
    /// connection is relayed over a connection of its own to vineyardd, within `scope` (see
    /// ``ProxySession``); the client maps vineyardd's shared memory itself.
    ///
    /// - Parameters:
    ///   - vineyarddSocket: vineyardd's IPC socket. It need not answer now: clients that
    ///     connect while it is down get an `IOError` reply to their registration.
    ///   - scope: the volume the socket exposes.
    ///   - socketPath: where to bind (a stale file there is replaced).
    ///   - advertisedSocket: the path reported to clients as `ipc_socket`; defaults to `socketPath`.
    /// - Throws: ``IPCSocketError`` when the socket cannot be bound.
    public init(vineyarddSocket: String, scope: VolumeScope, socketPath: String, advertisedSocket: String? = nil)
        throws(IPCSocketError)
    {
        let objects = ProxyVolumeObjects()
        self.scope = scope
        self.socketPath = socketPath
        self.server = try IPCServer(configuration: IPCServer.Configuration(socketPath: socketPath)) { channel in
            ProxySession(
                vineyarddSocket: vineyarddSocket, scope: scope, advertisedSocket: advertisedSocket ?? socketPath,
                peerPID: channel.peer.pid, objects: objects)
        }
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

/// Lets sessions report the server's connection count without a reference cycle at creation.
private final class ConnectionCounter: @unchecked Sendable {
    // Written once, before the first connection can be accepted... in practice right after
    // the server starts; a session created before that reports 0.
    weak var server: IPCServer?
}
