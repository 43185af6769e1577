//
// vineyard-csi: VolumeFS
//
// BackingSlots.swift: the backing files a mount's kernel connection holds, mirrored in a
// shared file beside the inode slots, so that a process taking the mount over knows them.

import FUSEKit
import Glibc
import SharedMemoryStore
import Synchronization

/// A file-backed (`MAP_SHARED`) array of 16-byte records, one per inode slot (inode `n` is
/// record `n - 2`): the backing id (`Int32`, 0 for none) and the count of passthrough opens
/// (`UInt32`) in one aligned 8-byte word, then the object whose file it is (`UInt64`).
///
/// Backing ids belong to the kernel's connection, not to the process that registered them, so
/// they outlive a crash of the driver; the process that takes the mount over releases each
/// one after the last passthrough open of its inode is released. The object is written before
/// the word that makes the record valid, and the word is one store, so a crash never leaves a
/// record whose id names another object. The file is sparse: only records in use take memory.
final class BackingSlots: @unchecked Sendable {
    // @unchecked: a record is written under its node's lock.

    struct Record: Equatable {
        var id: BackingID
        var opens: Int
        var object: ObjectID
    }

    static let recordSize = 16

    let path: String
    let capacity: Int
    private let base: UnsafeMutableRawPointer
    private let mappedSize: Int

    /// Opens the records beside `slotsPath` for `capacity` inodes: empty unless `resume`.
    static func open(besides slotsPath: String, capacity: Int, resume: Bool) throws(VolumeFSError) -> BackingSlots {
        let path = slotsPath + ".backing"
        let fd = try StateFileMapping.open(path)
        defer { close(fd) }
        let size = capacity * recordSize
        let pointer = try StateFileMapping.map(fd, path: path, size: size, empty: !resume)
        return BackingSlots(path: path, base: pointer, mappedSize: size, capacity: capacity)
    }

    private init(path: String, base: UnsafeMutableRawPointer, mappedSize: Int, capacity: Int) {
        self.path = path
        self.base = base
        self.mappedSize = mappedSize
        self.capacity = capacity
    }

    private func record(_ inode: InodeNumber) -> UnsafeMutableRawPointer? {
        guard inode.rawValue >= InodeSlots.firstInode else { return nil }
        let index = Int(inode.rawValue - InodeSlots.firstInode)
        guard index < capacity else { return nil }
        return base + index * Self.recordSize
    }

    /// Records the inode's backing file, or that it has none (under the node's lock).
    func set(_ inode: InodeNumber, _ backing: BackingFile?) {
        guard let record = record(inode) else { return }
        guard let backing else {
            record.storeBytes(of: 0, as: UInt64.self)
            return
        }
        record.storeBytes(of: backing.object.rawValue, toByteOffset: 8, as: UInt64.self)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let word = UInt64(UInt32(bitPattern: backing.id.rawValue)) | UInt64(UInt32(clamping: backing.opens)) << 32
        record.storeBytes(of: word, as: UInt64.self)
    }

    /// Every inode with a backing file, as the previous process left them.
    func usedRecords(inodes: some Sequence<InodeNumber>) -> [(InodeNumber, Record)] {
        inodes.compactMap { inode in
            guard let record = record(inode) else { return nil }
            let word = record.load(as: UInt64.self)
            let id = Int32(bitPattern: UInt32(truncatingIfNeeded: word))
            guard id > 0 else { return nil }
            return (
                inode,
                Record(
                    id: BackingID(rawValue: id), opens: Int(word >> 32),
                    object: ObjectID(rawValue: record.load(fromByteOffset: 8, as: UInt64.self)))
            )
        }
    }

    /// Removes the file (the mount is gone for good).
    func remove() {
        unlink(path)
    }

    deinit {
        munmap(base, mappedSize)
    }
}
