import CSIDriver
import POSIXCore
import Synchronization

/// A ``VolumeHost`` that serves nothing: it records what the node service asked of it.
///
/// A fake, because the real host mounts FUSE file systems and the node service's logic is
/// tested where neither FUSE nor a kubelet runs; the e2e tests drive the real host.
final class FakeVolumeHost: VolumeHost {
    struct State {
        var mounted: [String: VolumeDescriptor] = [:]
        /// Paths whose session died (mounted, but `isServing` answers false).
        var dead: Set<String> = []
        /// Paths an earlier process left serving, resumable once.
        var resumable: [String: String] = [:]
        var mountCalls: [String] = []
        var unmountCalls: [String] = []
        var purged: [String] = []
        var resized: [String: Int] = [:]
        var nextMountFailure: VolumeHostError?
        var ready = true
    }

    let state = Mutex(State())

    var isReady: Bool { state.withLock { $0.ready } }

    func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        try state.withLock { state throws(VolumeHostError) in
            state.mountCalls.append(path)
            if let failure = state.nextMountFailure {
                state.nextMountFailure = nil
                throw failure
            }
            state.mounted[path] = volume
            state.dead.remove(path)
        }
    }

    func unmount(path: String) throws(VolumeHostError) {
        state.withLock { state in
            state.unmountCalls.append(path)
            state.mounted[path] = nil
            state.dead.remove(path)
        }
    }

    func isServing(path: String) -> Bool {
        state.withLock { $0.mounted[path] != nil && !$0.dead.contains(path) }
    }

    func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? {
        VolumeStatistics(
            totalBytes: volume.capacityBytes, usedBytes: 100, availableBytes: volume.capacityBytes - 100,
            totalInodes: 10, usedInodes: 3, availableInodes: 7)
    }

    func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        state.withLock { $0.purged.append(volume.volumeID) }
    }

    func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        state.withLock { $0.resized[volume.volumeID] = capacityBytes }
    }

    func resume(_ volume: VolumeDescriptor, at path: String) -> Bool {
        state.withLock { state in
            guard state.resumable.removeValue(forKey: path) == volume.volumeID else { return false }
            state.mounted[path] = volume
            return true
        }
    }
}

/// A ``Mounter`` over an in-memory mount table; a fake for the same reason as ``FakeVolumeHost``.
final class FakeMounter: Mounter {
    struct Bind: Equatable {
        var source: String
        var target: String
        var flags: BindMountFlags.RawValue
    }

    struct State {
        var table: [String: MountEntry] = [:]
        var binds: [Bind] = []
        var unmounts: [String] = []
        var failBindMounts = false
    }

    let state = Mutex(State())

    func bindMount(source: String, target: String, flags: BindMountFlags) throws(MountError) {
        try state.withLock { state throws(MountError) in
            if state.failBindMounts { throw MountError(operation: "bind-mount \(source) on", path: target, errno: .notPermitted) }
            state.binds.append(Bind(source: source, target: target, flags: flags.rawValue))
            state.table[target] = MountEntry(
                mountPoint: target, fileSystemType: "fuse.vineyard", source: source,
                options: flags.contains(.readOnly) ? ["ro"] : ["rw"])
        }
    }

    func unmount(_ target: String, lazy: Bool) throws(MountError) {
        try state.withLock { state throws(MountError) in
            guard state.table.removeValue(forKey: target) != nil else {
                throw MountError(operation: "unmount", path: target, errno: .invalid)
            }
            state.unmounts.append(target)
        }
    }

    func mount(at path: String) -> MountEntry? {
        state.withLock { $0.table[path] }
    }

    /// Puts a mount in the table, as one a previous process left behind.
    func leave(_ path: String) {
        state.withLock { $0.table[path] = MountEntry(mountPoint: path, fileSystemType: "fuse.vineyard", source: "stale", options: []) }
    }
}
