// vineyard-csi: SharedMemoryStore
// Arena.swift: one shared-memory file, mapped once.

import Glibc
import POSIXCore

/// An arena file on the store directory, sized with `ftruncate` and mapped `MAP_SHARED` once
/// for the life of the store.
///
/// The mapping never moves or shrinks while the store is open, so pointers into it stay valid
/// for as long as a handle keeps the store alive. The descriptor is opened read-write so that a
/// socket client receiving it can map it writable (vineyard's create path does).
///
/// The base address is kept as an integer so the value is `Sendable` without unchecked
/// conformances; pointers are recreated on access.
struct Arena: Sendable {
    let index: Int
    let path: String
    let fileDescriptor: Int32
    let size: Int
    private let baseAddress: UInt
    /// Whether `madvise(MADV_HUGEPAGE)` was accepted.
    let hugePagesAdvised: Bool

    /// Opens (creating if needed) and maps the arena file, resizing it to `size`.
    static func open(index: Int, path: String, size: Int, hugePages: Bool) throws(StoreError) -> Arena {
        let fd = try Sys.open(path, O_RDWR | O_CREAT)
        do throws(StoreError) {
            if try Sys.fileSize(fd, path: path) != size {
                try Sys.truncate(fd, to: size, path: path)
            }
            let base = try Sys.mapShared(fd, length: size, path: path)
            var advised = false
            if hugePages {
                advised = madvise(base, size, MADV_HUGEPAGE) == 0
            }
            return Arena(
                index: index, path: path, fileDescriptor: fd, size: size,
                baseAddress: UInt(bitPattern: base), hugePagesAdvised: advised)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    private init(index: Int, path: String, fileDescriptor: Int32, size: Int, baseAddress: UInt, hugePagesAdvised: Bool)
    {
        self.index = index
        self.path = path
        self.fileDescriptor = fileDescriptor
        self.size = size
        self.baseAddress = baseAddress
        self.hugePagesAdvised = hugePagesAdvised
    }

    /// The mapped address of a byte offset.
    @inline(__always)
    func pointer(at offset: Int) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: baseAddress)! + offset
    }

    /// Makes a range safe and fast to write: reserves its pages in tmpfs (`posix_fallocate`, so a
    /// full tmpfs or memory cgroup is reported here as an error instead of a `SIGBUS` on first
    /// write) and, with `populate`, fills this process's page tables (`MADV_POPULATE_WRITE`;
    /// skipped silently on kernels without it). Never changes data.
    ///
    /// Populating pays only for writes through this process's mapping. Bytes another process
    /// writes through its own mapping of the arena (a vineyard client after `create_buffer`)
    /// fault in that process's page tables whatever happens here, so populating ours as well
    /// only adds a second round of page-table work to every fresh page.
    func back(_ extent: Extent, populate: Bool = true) throws(StoreError) {
        guard extent.length > 0 else { return }
        let page = Sys.pageSize
        let start = extent.offset / page * page
        let end = min(size, ArenaAllocator.roundUp(extent.end, to: page))
        try Sys.allocate(fileDescriptor, offset: start, length: end - start, requested: extent.length, path: path)
        if populate { try Sys.populate(pointer(at: start), length: end - start, requested: extent.length) }
    }

    /// Writes a range's dirty pages to the file's storage (`msync(MS_SYNC)`), for
    /// ``StoreConfiguration/SyncMode/hostCrash``.
    func flush(_ extent: Extent) throws(StoreError) {
        let page = Sys.pageSize
        let start = extent.offset / page * page
        let end = min(size, ArenaAllocator.roundUp(extent.end, to: page))
        try Sys.syncMapping(pointer(at: start), length: end - start, path: path)
    }

    /// Releases a range's pages back to the host (the range reads as zeros afterwards).
    func release(_ extent: Extent) {
        guard extent.length > 0 else { return }
        _ = madvise(pointer(at: extent.offset), extent.length, Sys.madviseRemove)
    }

    /// Unmaps and closes. Only called when nothing can reference the mapping any more.
    func unmapAndClose() {
        munmap(pointer(at: 0), size)
        Sys.close(fileDescriptor)
    }
}
