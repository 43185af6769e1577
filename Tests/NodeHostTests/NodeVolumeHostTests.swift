import CSIDriver
import Foundation
import Logging
import NodeHost
import SharedMemoryStore
import Testing

/// Whether this process may mount FUSE file systems and bind mounts.
let canMount = getuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0

/// The volume host and the mounter on real mounts of a real embedded store.
@Suite(.enabled(if: canMount, "needs root and /dev/fuse"), .serialized)
struct NodeVolumeHostTests {
    static let cluster = ClusterReference(namespace: "vineyard-system", name: "test")

    /// A host over a store in `directory/shm`, serving sockets under `directory/ipc`.
    static func host(_ directory: String, handover: HandoverConfiguration? = nil) -> NodeVolumeHost {
        let registry = StoreRegistry(
            rootDirectory: directory + "/shm", defaults: StoreConfiguration(directory: directory + "/shm", capacity: 64 << 20))
        return NodeVolumeHost(
            registry: registry, selection: .embeddedOnly, directReads: false, socketDirectory: directory + "/ipc",
            handover: handover, logger: Logger(label: "test"))
    }

    static func withDirectory(_ body: (String) throws -> Void) throws {
        let path = "/tmp/vineyard-csi-nodehost-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path + "/mnt", withIntermediateDirectories: true)
        defer {
            // Lazily, by path, whatever a failed test left mounted.
            for mount in ["/pod", "/mnt/vineyard.sock", "/mnt"] { _ = umount2(path + mount, Int32(MNT_DETACH)) }
            try? FileManager.default.removeItem(atPath: path)
        }
        try body(path)
    }

    @Test func servesAVolumeAndAccountsForIt() throws {
        try Self.withDirectory { directory in
            let host = Self.host(directory)
            let volume = VolumeDescriptor(volumeID: "vol-a", cluster: Self.cluster, capacityBytes: 8 << 20, ephemeral: false)
            let mountPoint = directory + "/mnt"
            try host.mount(volume, at: mountPoint)
            #expect(host.isServing(path: mountPoint))
            #expect(host.isReady)
            #expect(FileManager.default.fileExists(atPath: mountPoint + "/vineyard.sock"), "the volume's socket is bound")

            try Data(repeating: 7, count: 1 << 20).write(to: URL(fileURLWithPath: mountPoint + "/a.bin"))
            let stats = try #require(host.statistics(of: volume))
            #expect(stats.totalBytes == 8 << 20)
            #expect(stats.usedBytes >= 1 << 20)
            #expect(stats.usedInodes >= 2)

            // Past the quota: ENOSPC, until the volume grows.
            #expect(throws: (any Error).self) {
                try Data(repeating: 1, count: 9 << 20).write(to: URL(fileURLWithPath: mountPoint + "/big.bin"))
            }
            try host.resize(volume, capacityBytes: 32 << 20)
            try Data(repeating: 1, count: 9 << 20).write(to: URL(fileURLWithPath: mountPoint + "/big.bin"))

            try host.unmount(path: mountPoint)
            #expect(!host.isServing(path: mountPoint))
            #expect(LinuxMounter().mount(at: mountPoint) == nil, "no mount outlives unmount")

            // The files stay in the store until the volume is purged.
            try host.mount(volume, at: mountPoint)
            #expect(FileManager.default.fileExists(atPath: mountPoint + "/a.bin"))
            try host.unmount(path: mountPoint)
            try host.purge(volume)
            #expect(host.statistics(of: volume)?.usedBytes == 0)
            host.releaseMounts()
        }
    }

    @Test func releaseUnmountsEverythingWithoutHandover() throws {
        try Self.withDirectory { directory in
            let host = Self.host(directory)
            let volume = VolumeDescriptor(volumeID: "vol-b", cluster: Self.cluster, capacityBytes: 0, ephemeral: true)
            try host.mount(volume, at: directory + "/mnt")
            host.releaseMounts()
            #expect(LinuxMounter().mount(at: directory + "/mnt") == nil)
        }
    }

    @Test func bindMountsCarryTheirFlags() throws {
        try Self.withDirectory { directory in
            let mounter = LinuxMounter()
            try FileManager.default.createDirectory(atPath: directory + "/pod", withIntermediateDirectories: true)
            try mounter.bindMount(source: directory + "/mnt", target: directory + "/pod", flags: [.readOnly, .noExecute])
            let entry = try #require(mounter.mount(at: directory + "/pod"))
            #expect(entry.isReadOnly)
            #expect(entry.options.contains("noexec"))
            try mounter.unmount(directory + "/pod", lazy: false)
            #expect(mounter.mount(at: directory + "/pod") == nil)
            #expect(throws: MountError.self) { try mounter.unmount(directory + "/pod", lazy: false) }
        }
    }
}
