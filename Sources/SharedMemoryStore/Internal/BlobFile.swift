// vineyard-csi: SharedMemoryStore
// BlobFile.swift: a blob whose bytes live in a file of their own.

import Glibc
import POSIXCore

/// The file of one file-backed blob, `<store directory>/blobs/<identifier in hex>`, and this
/// process's mapping of it.
///
/// The file's byte 0 is the blob's byte 0, so the kernel can use it as a FUSE passthrough backing
/// file and a vineyard client can map it at offset 0. The store keeps only the mapping: the
/// descriptor is closed right after mapping (a store may hold many thousands of blobs; container
/// limits on open files are far lower) and reopened by path when someone asks for one.
///
/// `reserved` is the file's length while the blob is written (page-rounded, reserved in tmpfs
/// with `fallocate` so a full tmpfs is an error, not a `SIGBUS`); sealing cuts the file to the
/// blob's exact size. The store's capacity counts ``accountedBytes``.
struct BlobFile: Sendable {
    let path: String
    /// The file's length (a writer's reservation, or the sealed size).
    private(set) var length: Int
    /// Bytes of the mapping (the length rounded up to pages; 0 when nothing is mapped).
    private(set) var mappedLength: Int
    /// The mapping's address as an integer, so the value stays `Sendable`.
    private(set) var baseAddress: UInt

    /// Bytes this file takes from the store's capacity.
    var accountedBytes: Int { BlobFile.pageRounded(length) }

    var base: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: baseAddress) }

    static func pageRounded(_ length: Int) -> Int { ArenaAllocator.roundUp(length, to: Sys.pageSize) }

    /// The file of blob `id` in `directory` (the store's `blobs` directory).
    static func path(in directory: String, for id: ObjectID) -> String {
        var hex = String(id.rawValue, radix: 16)
        while hex.count < 16 { hex = "0" + hex }
        return directory + "/" + hex
    }

    /// The identifier a file name in the `blobs` directory stands for, if it is one.
    static func identifier(fileName: String) -> ObjectID? {
        guard fileName.utf8.count == 16, let raw = UInt64(fileName, radix: 16), raw & ObjectID.blobBit != 0 else {
            return nil
        }
        return ObjectID(raw)
    }

    /// Creates the file (it must not exist), reserves `length` bytes and maps them.
    static func create(
        path: String, length: Int, populate: Bool, hugePages: Bool
    ) throws(StoreError) -> BlobFile {
        let fd = try Sys.open(path, O_RDWR | O_CREAT | O_EXCL)
        defer { Sys.close(fd) }
        var file = BlobFile(path: path, length: 0, mappedLength: 0, baseAddress: 0)
        do throws(StoreError) {
            try file.grow(fd: fd, to: length, populate: populate, hugePages: hugePages)
        } catch {
            file.unmap()
            _ = unlink(path)
            throw error
        }
        return file
    }

    /// Maps an existing file (recovery and adoption) at its current length.
    static func attach(path: String, hugePages: Bool) throws(StoreError) -> BlobFile {
        let fd = try Sys.open(path, O_RDWR)
        defer { Sys.close(fd) }
        let length = try Sys.fileSize(fd, path: path)
        var file = BlobFile(path: path, length: length, mappedLength: 0, baseAddress: 0)
        try file.map(fd: fd, from: 0, to: pageRounded(length), hugePages: hugePages)
        return file
    }

    /// Grows the file to `newLength` (reserving the new bytes) and the mapping with it. The
    /// bytes already written stay where they are in the file; the mapping is extended in place
    /// when the addresses after it are free, else mapped again elsewhere (the base changes, the
    /// contents do not: nothing is copied). On failure the file and the mapping are as before.
    mutating func grow(to newLength: Int, populate: Bool, hugePages: Bool) throws(StoreError) {
        let fd = try Sys.open(path, O_RDWR)
        defer { Sys.close(fd) }
        try grow(fd: fd, to: newLength, populate: populate, hugePages: hugePages)
    }

    private mutating func grow(fd: Int32, to newLength: Int, populate: Bool, hugePages: Bool) throws(StoreError) {
        guard newLength > length else { return }
        let oldLength = length
        let newMapped = BlobFile.pageRounded(newLength)
        do throws(StoreError) {
            try Sys.truncate(fd, to: newMapped, path: path)
            try Sys.allocate(
                fd, offset: oldLength, length: newMapped - oldLength, requested: newLength - oldLength, path: path)
            let previousMapped = mappedLength
            try map(fd: fd, from: previousMapped, to: newMapped, hugePages: hugePages)
            length = newMapped
            if populate, let base {
                try Sys.populate(base + previousMapped, length: newMapped - previousMapped, requested: newLength - oldLength)
            }
        } catch {
            // Give the reservation back: the file returns to its old length (punching what was
            // reserved beyond it), the mapping to its old extent.
            if mappedLength > BlobFile.pageRounded(oldLength), let base {
                munmap(base + BlobFile.pageRounded(oldLength), mappedLength - BlobFile.pageRounded(oldLength))
                mappedLength = BlobFile.pageRounded(oldLength)
                if mappedLength == 0 { baseAddress = 0 }
            }
            _ = ftruncate(fd, off_t(oldLength))
            length = oldLength
            throw error
        }
    }

    /// Maps file bytes `from..<to` after the existing mapping of `0..<from`: right behind it if
    /// those addresses are free, otherwise the whole `0..<to` somewhere else.
    private mutating func map(fd: Int32, from: Int, to: Int, hugePages: Bool) throws(StoreError) {
        guard to > from else { return }
        let protection = PROT_READ | PROT_WRITE
        if let base, from > 0 {
            let hint = base + from
            // Best effort: taken addresses (EEXIST) fall back to mapping the whole file below.
            if let added = try? Sys.mapShared(
                fd, length: to - from, protection: protection, at: hint, flags: BlobFile.fixedNoReplace, offset: from,
                path: path)
            {
                if added == hint {
                    if hugePages { _ = madvise(added, to - from, MADV_HUGEPAGE) }
                    mappedLength = to
                    return
                }
                munmap(added, to - from)  // a kernel without MAP_FIXED_NOREPLACE took it as a hint
            }
        }
        let whole = try Sys.mapShared(fd, length: to, protection: protection, path: path)
        if hugePages { _ = madvise(whole, to, MADV_HUGEPAGE) }
        unmap()
        baseAddress = UInt(bitPattern: whole)
        mappedLength = to
    }

    /// Cuts the file to exactly `size` bytes (sealing) and unmaps the pages beyond it.
    mutating func truncate(to size: Int) {
        let keep = BlobFile.pageRounded(size)
        if let base, mappedLength > keep {
            munmap(base + keep, mappedLength - keep)
            mappedLength = keep
            if keep == 0 { baseAddress = 0 }
        }
        _ = Glibc.truncate(path, off_t(size))
        length = size
    }

    /// Writes the mapped bytes, the file's size and its directory entry to stable storage, for
    /// ``StoreConfiguration/SyncMode/hostCrash``.
    func flush(_ size: Int) throws(StoreError) {
        guard let base, size > 0 else { return }
        try Sys.syncMapping(base, length: BlobFile.pageRounded(size), path: path)
        let fd = try Sys.open(path, O_RDONLY)
        defer { Sys.close(fd) }
        try Sys.fsync(fd, path: path)
        if let slash = path.lastIndex(of: "/") { try Sys.syncDirectory(String(path[..<slash])) }
    }

    /// Writes `bytes` at `offset` with `pwrite(2)`, which fills tmpfs pages without faulting
    /// them into the mapping one by one (the range must lie within the file).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StoreError) {
        let fd = try Sys.open(path, O_RDWR)
        defer { Sys.close(fd) }
        try Sys.pwriteAll(fd, bytes, at: offset, path: path)
    }

    /// Opens a new descriptor of the file (the caller closes it).
    func open(writable: Bool) throws(StoreError) -> Int32 {
        try Sys.open(path, writable ? O_RDWR : O_RDONLY)
    }

    /// Unmaps (the file stays).
    mutating func unmap() {
        if let base, mappedLength > 0 { munmap(base, mappedLength) }
        baseAddress = 0
        mappedLength = 0
    }

    /// Unmaps and removes the file; its memory returns to tmpfs once no other process (a
    /// client's mapping, a passthrough backing file) holds it.
    mutating func remove() {
        unmap()
        _ = unlink(path)
    }

    /// `MAP_FIXED_NOREPLACE` (Linux 4.17): map at the hint or fail, never over another mapping.
    private static let fixedNoReplace: Int32 = 0x100000
}
