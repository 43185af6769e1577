//
// vineyard-csi: VolumeFS
//
// VolumeAccounting.swift: a volume's byte, file and directory counts, kept incrementally.

import SharedMemoryStore
import StoreBackend
import Synchronization

/// The usage of one volume in one backend, shared by every ``VolumeFileSystem`` of that volume
/// in this process (several mounts of one volume count against one quota).
///
/// Counted once by scanning the volume's names when the first file system of the volume is
/// created, then kept up to date by every change. `bytes` is the logical size of the
/// volume: the sizes of its files, where a file being rewritten counts with the size of its
/// new version.
final class VolumeAccounting: Sendable {
    private struct Key: Hashable {
        var backend: ObjectIdentifier
        var volumeID: String
    }

    private struct Entry: Sendable {
        weak let accounting: VolumeAccounting?
    }

    /// Live accountings. Each holds its backend strongly, so an identifier in a live entry is
    /// never that of another backend.
    private static let registry = Mutex<[Key: Entry]>([:])

    let backend: any ObjectBackend
    let volumeID: String
    private let bytes: Atomic<Int>
    private let files: Atomic<Int>
    private let directories: Atomic<Int>
    /// The part of `bytes` that open writers hold beyond the versions they started from: kept
    /// when the named part is counted again.
    private let pending = Atomic<Int>(0)

    private init(backend: any ObjectBackend, volumeID: String, usage: VolumeUsage) {
        self.backend = backend
        self.volumeID = volumeID
        self.bytes = Atomic(usage.bytes)
        self.files = Atomic(usage.files)
        self.directories = Atomic(usage.directories)
    }

    /// The accounting of a volume, counted now if no file system of it is alive (a backend
    /// that does not answer counts nothing until ``reset(to:)``).
    static func shared(backend: any ObjectBackend, naming: VolumeNaming) -> VolumeAccounting {
        let key = Key(backend: backend.identity, volumeID: naming.volumeID)
        return registry.withLock { registry in
            if let live = registry[key]?.accounting, live.backend.identity == backend.identity { return live }
            let usage = (try? scan(backend: backend, naming: naming)) ?? VolumeUsage(bytes: 0, files: 0, directories: 0)
            let accounting = VolumeAccounting(backend: backend, volumeID: naming.volumeID, usage: usage)
            registry[key] = Entry(accounting: accounting)
            return accounting
        }
    }

    /// The accounting of a volume if a file system of it is alive in this process.
    static func live(backend: any ObjectBackend, volumeID: String) -> VolumeAccounting? {
        let key = Key(backend: backend.identity, volumeID: volumeID)
        return registry.withLock { registry in
            guard let live = registry[key]?.accounting, live.backend.identity == backend.identity else {
                registry[key] = nil
                return nil
            }
            return live
        }
    }

    /// Counts a volume from its names: directory markers, and files with their sizes.
    /// O(n) in the volume's names.
    static func scan(backend: any ObjectBackend, naming: VolumeNaming) throws(BackendError) -> VolumeUsage {
        var usage = VolumeUsage(bytes: 0, files: 0, directories: 0)
        var files: [(name: String, id: ObjectID)] = []
        for (name, id) in try backend.names(withPrefix: naming.rootPrefix, limit: nil) {
            if name.utf8.last == UInt8(ascii: "/") {
                if name.utf8.count != naming.rootPrefix.utf8.count { usage.directories += 1 }
                continue
            }
            files.append((name, id))
        }
        let ids = Set(files.map(\.id))  // a hard-linked file counts once
        let metas = try backend.metas(Array(ids))
        for id in ids {
            guard let meta = metas[id] else { continue }
            guard NodeMetadata.kind(of: id, meta: meta) != nil else { continue }
            usage.files += 1
            usage.bytes += backend.fileSize(of: id, meta: meta)
        }
        return usage
    }

    /// Counts the volume's names again (they changed behind the file systems' backs); what
    /// open writers hold stays counted.
    func recount() {
        guard var usage = try? Self.scan(backend: backend, naming: VolumeNaming(volumeID: volumeID)) else { return }
        usage.bytes += pending.load(ordering: .relaxed)
        reset(to: usage)
    }

    var usage: VolumeUsage {
        VolumeUsage(
            bytes: bytes.load(ordering: .relaxed), files: files.load(ordering: .relaxed),
            directories: directories.load(ordering: .relaxed))
    }

    /// Adds `delta` bytes a writer holds unless that would take the volume over `quota` (0: no
    /// quota). Shrinking always succeeds.
    func reserve(_ delta: Int, quota: Int) -> Bool {
        guard delta > 0, quota > 0 else {
            adjustPending(delta)
            return true
        }
        var current = bytes.load(ordering: .relaxed)
        while true {
            guard current <= quota - delta else { return false }
            let (exchanged, original) = bytes.compareExchange(
                expected: current, desired: current + delta, ordering: .relaxed)
            if exchanged {
                pending.wrappingAdd(delta, ordering: .relaxed)
                return true
            }
            current = original
        }
    }

    /// A writer's bytes beyond its starting version changed by `delta`.
    func adjustPending(_ delta: Int) {
        bytes.wrappingAdd(delta, ordering: .relaxed)
        pending.wrappingAdd(delta, ordering: .relaxed)
    }

    /// A writer's `delta` bytes are now part of a named version (counted by ``adjust(bytes:files:directories:)``).
    func settle(_ delta: Int) {
        pending.wrappingAdd(-delta, ordering: .relaxed)
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
