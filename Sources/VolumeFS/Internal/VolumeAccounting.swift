//
// vineyard-csi: VolumeFS
//
// VolumeAccounting.swift: a volume's byte, file and directory counts, kept incrementally.

import SharedMemoryStore
import Synchronization

/// The usage of one volume in one store, shared by every ``VolumeFileSystem`` of that volume
/// in this process (several mounts of one volume count against one quota).
///
/// Counted once by scanning the volume's names when the first file system of the volume is
/// created, then kept up to date by every change. `bytes` is the logical size of the
/// volume: the sizes of its files, where a file being rewritten counts with the size of its
/// new version.
final class VolumeAccounting: Sendable {
    private struct Key: Hashable {
        var store: ObjectIdentifier
        var volumeID: String
    }

    private struct Entry: Sendable {
        weak let accounting: VolumeAccounting?
    }

    /// Live accountings. Each holds its store strongly, so an identifier in a live entry is
    /// never that of another store.
    private static let registry = Mutex<[Key: Entry]>([:])

    let store: ObjectStore
    let volumeID: String
    private let bytes: Atomic<Int>
    private let files: Atomic<Int>
    private let directories: Atomic<Int>

    private init(store: ObjectStore, volumeID: String, usage: VolumeUsage) {
        self.store = store
        self.volumeID = volumeID
        self.bytes = Atomic(usage.bytes)
        self.files = Atomic(usage.files)
        self.directories = Atomic(usage.directories)
    }

    /// The accounting of a volume, counted now if no file system of it is alive.
    static func shared(store: ObjectStore, naming: VolumeNaming) -> VolumeAccounting {
        let key = Key(store: ObjectIdentifier(store), volumeID: naming.volumeID)
        return registry.withLock { registry in
            if let live = registry[key]?.accounting, live.store === store { return live }
            let accounting = VolumeAccounting(
                store: store, volumeID: naming.volumeID, usage: scan(store: store, naming: naming))
            registry[key] = Entry(accounting: accounting)
            return accounting
        }
    }

    /// The accounting of a volume if a file system of it is alive in this process.
    static func live(store: ObjectStore, volumeID: String) -> VolumeAccounting? {
        let key = Key(store: ObjectIdentifier(store), volumeID: volumeID)
        return registry.withLock { registry in
            guard let live = registry[key]?.accounting, live.store === store else {
                registry[key] = nil
                return nil
            }
            return live
        }
    }

    /// Counts a volume from its names: directory markers, and files with their sizes.
    /// O(n) in the volume's names.
    static func scan(store: ObjectStore, naming: VolumeNaming) -> VolumeUsage {
        var usage = VolumeUsage(bytes: 0, files: 0, directories: 0)
        var seen: Set<ObjectID> = []
        for (name, id) in store.names(withPrefix: naming.rootPrefix) {
            if name.utf8.last == UInt8(ascii: "/") {
                if name.utf8.count != naming.rootPrefix.utf8.count { usage.directories += 1 }
                continue
            }
            guard let meta = store.meta(id) else { continue }
            guard NodeMetadata.kind(of: id, meta: meta) != nil else { continue }
            guard seen.insert(id).inserted else { continue }  // a hard link counts once
            usage.files += 1
            usage.bytes += NodeMetadata.size(of: id, meta: meta)
        }
        return usage
    }

    var usage: VolumeUsage {
        VolumeUsage(
            bytes: bytes.load(ordering: .relaxed), files: files.load(ordering: .relaxed),
            directories: directories.load(ordering: .relaxed))
    }

    /// Adds `delta` bytes unless that would take the volume over `quota` (0: no quota).
    /// Shrinking always succeeds.
    func reserve(_ delta: Int, quota: Int) -> Bool {
        guard delta > 0, quota > 0 else {
            bytes.wrappingAdd(delta, ordering: .relaxed)
            return true
        }
        var current = bytes.load(ordering: .relaxed)
        while true {
            guard current <= quota - delta else { return false }
            let (exchanged, original) = bytes.compareExchange(
                expected: current, desired: current + delta, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func adjust(bytes delta: Int = 0, files fileDelta: Int = 0, directories directoryDelta: Int = 0) {
        if delta != 0 { bytes.wrappingAdd(delta, ordering: .relaxed) }
        if fileDelta != 0 { files.wrappingAdd(fileDelta, ordering: .relaxed) }
        if directoryDelta != 0 { directories.wrappingAdd(directoryDelta, ordering: .relaxed) }
    }

    /// Replaces the counts (after a purge).
    func reset(to usage: VolumeUsage) {
        bytes.store(usage.bytes, ordering: .relaxed)
        files.store(usage.files, ordering: .relaxed)
        directories.store(usage.directories, ordering: .relaxed)
    }
}
