// vineyard-csi: VineyardSocket
// ScopedClient.swift: what every volume socket session knows about its client, whatever the backend.

import VineyardIPC
import SharedMemoryStore

/// The client side of one connection to a volume's socket (``VolumeSession``), whatever the
/// backend: the handshake state, where the client sees the volume (its mounts decide how absolute names are
/// read and whether it may change anything), and the scope's name rules.
///
/// One instance per connection, used by that connection's thread only.
final class ScopedClient {
    let scope: VolumeScope
    private let peerPID: Int32
    private var cachedMounts: [ClientMounts.Mount]?
    /// Whether the client sent `register_request`.
    var registered = false

    /// How often a waiting `get_name`/`get_data` looks again.
    static let waitPollMilliseconds: Int32 = 20
    /// How long a waiting request may wait before it is answered "not found" (vineyard's
    /// client gives up after 300 s).
    static let maximumWaitMilliseconds = 290_000

    init(scope: VolumeScope, peerPID: Int32) {
        self.scope = scope
        self.peerPID = peerPID
    }

    /// Refuses requests before registration, and changes from a read-only client.
    func admit(_ request: IPCRequest) throws(IPCError) {
        guard registered else {
            throw IPCError(.invalid, "The connection is not registered yet, command is: \(request.type)")
        }
        if request.mutates && isReadOnly {
            throw IPCError(.invalid, "\(request.type): the volume is mounted read-only for this client")
        }
    }

    /// A client that sees the volume only through read-only mounts (a pod whose volume was
    /// published read-only) may not change it. Clients whose mounts cannot be read (not
    /// visible from the driver's PID namespace) are not restricted.
    var isReadOnly: Bool {
        !mounts.isEmpty && mounts.allSatisfy(\.readOnly)
    }

    /// Where the client sees the volume (read once per connection, when first needed).
    var mounts: [ClientMounts.Mount] {
        if let cachedMounts { return cachedMounts }
        let found = ClientMounts.mounts(pid: peerPID, source: scope.mountSource)
        cachedMounts = found
        return found
    }

    /// The backend's name for a client's name, or `Invalid` for names the scope refuses.
    func storeName(_ clientName: String) throws(IPCError) -> String {
        guard let path = scope.path(forClientName: clientName, mounts: mounts) else {
            throw IPCError(.invalid, "invalid name \(clientName.debugDescription) for this volume")
        }
        let storeName = scope.storeName(forPath: path)
        guard storeName.utf8.count <= StoreLimits.maximumNameLength, !storeName.utf8.contains(0) else {
            throw IPCError(.invalid, "name \(clientName.debugDescription) is too long")
        }
        return storeName
    }

    /// The volume paths among backend names that match a listing pattern, in the order given,
    /// at most `pattern.limit`.
    func visibleNames(
        _ names: some Sequence<(name: String, id: ObjectID)>, matching pattern: IPCPattern
    ) throws(IPCError) -> [(name: String, id: ObjectID)] {
        let matcher = try PatternMatcher(pattern)
        var result: [(name: String, id: ObjectID)] = []
        guard pattern.limit > 0 else { return result }
        for (storeName, id) in names {
            guard let path = scope.path(forStoreName: storeName), matcher.matches(path) else { continue }
            result.append((path, id))
            if result.count >= pattern.limit { break }
        }
        return result
    }

    /// Sleeps one poll interval; `false` once the client hung up or the wait is over.
    static func keepWaiting(_ waited: inout Int, _ channel: IPCChannel) -> Bool {
        guard waited < maximumWaitMilliseconds else { return false }
        waited += Int(waitPollMilliseconds)
        return !channel.peerHungUp(timeoutMilliseconds: waitPollMilliseconds)
    }

    /// The answer to a command no volume socket implements: `NotImplemented` (6) for vineyard
    /// commands deliberately left out, vineyardd's `Invalid` (1) for anything else.
    static func unsupported(_ type: String) -> IPCError {
        if knownUnsupported.contains(type) {
            return IPCError(.notImplemented, "not implemented by vineyard-csi's volume socket: \(type)")
        }
        return IPCError(.invalid, "Got unexpected command: \(type)")
    }

    /// vineyard commands the volume sockets deliberately do not implement (GPU and plasma
    /// buffers, sessions, spilling, remote buffers, locks, batched name and data commands).
    static let knownUnsupported: Set<String> = [
        "create_gpu_buffer_request", "get_gpu_buffers_request",
        "create_buffer_by_plasma_request", "get_buffers_by_plasma_request", "plasma_seal_request",
        "plasma_release_request", "plasma_delete_data_request", "create_disk_buffer_request",
        "make_arena_request", "finalize_arena_request", "new_session_request", "delete_session_request",
        "move_buffers_ownership_request", "shallow_copy_request", "evict_request",
        "load_request", "unpin_request", "is_spilled_request", "is_in_use_request",
        "create_remote_buffer_request", "create_remote_buffers_request", "get_remote_buffers_request",
        "acquire_lock_request", "release_lock_request", "debug_command",
        "release_blobs_with_rdma_request", "label_request", "sync_meta_request", "put_names_request",
        "get_names_request", "drop_names_request", "batch_persist_request", "get_data_by_name_request",
        "create_datas_request",
    ]
}
