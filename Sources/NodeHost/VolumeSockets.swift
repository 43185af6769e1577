import CSIDriver
import Glibc
import Logging
import POSIXCore
import Synchronization
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

    /// Starts the volume's socket server (made by `makeServer` from the volume's scope, the
    /// host-side socket path and the path clients see) and bind-mounts it over
    /// `<path>/vineyard.sock`, where the volume's file system is mounted.
    func attach(
        _ volume: VolumeDescriptor, at path: String,
        makeServer: (VolumeScope, String, String) throws(VolumeHostError) -> VineyardSocketServer
    ) throws(VolumeHostError) {
        detach(path: path)
        let socketPath = "\(directory)/\(Self.fileName(for: path))"
        let mountPoint = path + "/" + VolumeFileSystem.socketFileName
        do {
            try syscall { mkdir(directory, 0o755) }
        } catch .exists {
            // made for an earlier volume
        } catch {
            throw VolumeHostError(.failed, "cannot create \(directory): \(error)")
        }
        let scope = VolumeScope(
            volumeID: volume.volumeID,
            namePrefix: VolumeFileSystem.storeNamePrefix(volumeID: volume.volumeID),
            ownerKey: VolumeFileSystem.ownerMetadataKey,
            mountSource: VolumeFileSystem.mountSource(volumeID: volume.volumeID),
            reservedPaths: [VolumeFileSystem.socketFileName, VolumeFileSystem.vineyardConfigFileName])
        let server = try makeServer(scope, socketPath, mountPoint)
        do {
            try syscall { mount(socketPath, mountPoint, nil, UInt(MS_BIND), nil) }
        } catch {
            server.stop()
            throw VolumeHostError(.failed, "cannot bind the vineyard socket on \(mountPoint): \(error)")
        }
        served.withLock { $0[path] = Served(server: server, mountPoint: mountPoint) }
        logger.info("serving vineyard socket", metadata: ["volume": "\(volume.volumeID)", "socket": "\(mountPoint)"])
    }

    /// Unmounts the socket of `path` (lazily: clients may be connected) and stops its server,
    /// which closes every connection and releases what each held.
    func detach(path: String) {
        guard let entry = served.withLock({ $0.removeValue(forKey: path) }) else { return }
        _ = try? syscall { umount2(entry.mountPoint, Int32(MNT_DETACH)) }
        if !entry.server.stop() {
            logger.warning("vineyard socket connections did not close in time", metadata: ["path": "\(path)"])
        }
    }

    /// A short, stable file name per served path: socket paths are limited to 107 bytes.
    static func fileName(for path: String) -> String {
        "\(PathHash(path)).sock"
    }
}
