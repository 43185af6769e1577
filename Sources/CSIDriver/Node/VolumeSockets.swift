import Glibc
import Logging
import SharedMemoryStore
import StoreBackend
import Synchronization
import VineyardIPC
import VineyardSocket
import VolumeFS

/// The vineyard socket at the root of every served volume.
///
/// A Unix socket cannot live inside a FUSE file system, so each served path gets a real
/// socket on the host, under ``directory``, and that socket file is bind-mounted over the
/// volume's `vineyard.sock` placeholder (see ``VolumeFileSystem/ensureSocketPlaceholder(store:volumeID:)``).
/// Publishing binds the staging path recursively (``LinuxMounter``), so every target — and
/// every pod mount of it — sees the socket at `<mount>/vineyard.sock`. The socket serves the
/// volume's objects only (``VolumeScope``), from the cluster's store, zero-copy.
final class VolumeSockets: Sendable {
    private struct Served: Sendable {
        let server: VineyardSocketServer
        let mountPoint: String
    }

    /// Where the host-side socket files are bound.
    let directory: String
    private let served = Mutex<[String: Served]>([:])
    private let logger: Logger

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// Call before the volume's file system is created, so the placeholder is counted with it.
    func prepare(_ volume: VolumeDescriptor, store: ObjectStore) throws(VolumeHostError) {
        do {
            try VolumeFileSystem.ensureSocketPlaceholder(store: store, volumeID: volume.volumeID)
            try VolumeFileSystem.ensureVineyardConfig(store: store, volumeID: volume.volumeID)
        } catch {
            throw VolumeHostError(.failed, "cannot prepare the vineyard socket of volume \(volume.volumeID): \(error)")
        }
    }

    /// Starts the volume's socket server and bind-mounts it over `<path>/vineyard.sock`, where
    /// the volume's file system is mounted.
    func attach(_ volume: VolumeDescriptor, store: ObjectStore, at path: String) throws(VolumeHostError) {
        try attach(volume, at: path) { scope, socketPath, mountPoint throws(IPCSocketError) in
            try VineyardSocketServer(
                backend: EmbeddedBackend(store: store), scope: scope, socketPath: socketPath, advertisedSocket: mountPoint,
                namesChanged: { VolumeFileSystem.refreshUsage(store: store, volumeID: volume.volumeID) })
        }
    }

    /// The same for a volume served by a vineyardd (cluster mode): the socket relays to
    /// `vineyarddSocket`, within the volume's scope.
    func attach(_ volume: VolumeDescriptor, vineyarddSocket: String, at path: String) throws(VolumeHostError) {
        try attach(volume, at: path) { scope, socketPath, mountPoint throws(IPCSocketError) in
            try VineyardSocketServer(
                backend: VineyarddBackend(socketPath: vineyarddSocket), scope: scope, socketPath: socketPath,
                advertisedSocket: mountPoint)
        }
    }

    private func attach(
        _ volume: VolumeDescriptor, at path: String,
        makeServer: (VolumeScope, String, String) throws(IPCSocketError) -> VineyardSocketServer
    ) throws(VolumeHostError) {
        detach(path: path)
        let socketPath = "\(directory)/\(Self.fileName(for: path))"
        let mountPoint = path + "/" + VolumeFileSystem.socketFileName
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw VolumeHostError(.failed, "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let scope = VolumeScope(
            volumeID: volume.volumeID,
            namePrefix: VolumeFileSystem.storeNamePrefix(volumeID: volume.volumeID),
            ownerKey: VolumeFileSystem.ownerMetadataKey,
            mountSource: VolumeFileSystem.mountSource(volumeID: volume.volumeID),
            reservedPaths: [VolumeFileSystem.socketFileName, VolumeFileSystem.vineyardConfigFileName])
        let server: VineyardSocketServer
        do throws(IPCSocketError) {
            server = try makeServer(scope, socketPath, mountPoint)
        } catch {
            throw VolumeHostError(.failed, "cannot serve the vineyard socket of volume \(volume.volumeID): \(error)")
        }
        guard mount(socketPath, mountPoint, nil, UInt(MS_BIND), nil) == 0 else {
            let failure = String(cString: strerror(errno))
            server.stop()
            throw VolumeHostError(.failed, "cannot bind the vineyard socket on \(mountPoint): \(failure)")
        }
        served.withLock { $0[path] = Served(server: server, mountPoint: mountPoint) }
        logger.info("serving vineyard socket", metadata: ["volume": "\(volume.volumeID)", "socket": "\(mountPoint)"])
    }

    /// Unmounts the socket of `path` (lazily: clients may be connected) and stops its server,
    /// which closes every connection and releases what each held.
    func detach(path: String) {
        guard let entry = served.withLock({ $0.removeValue(forKey: path) }) else { return }
        _ = umount2(entry.mountPoint, Int32(MNT_DETACH))
        if !entry.server.stop() {
            logger.warning("vineyard socket connections did not close in time", metadata: ["path": "\(path)"])
        }
    }

    /// A short, stable file name per served path: socket paths are limited to 107 bytes.
    static func fileName(for path: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in path.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + ".sock"
    }
}
