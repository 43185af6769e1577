//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Allocate.swift: fallocate, as tmpfs offers it.

import FUSEKit
import Glibc
import StoreBackend
import Synchronization

extension VolumeFileSystem {
    /// `fallocate(2)` flags (linux/falloc.h, which Glibc does not export).
    static let allocateKeepSize: Int32 = 0x01
    static let allocatePunchHole: Int32 = 0x02

    /// `fallocate(2)` with the modes tmpfs supports: plain allocation (extends the file with
    /// zeros, within the quota), `FALLOC_FL_KEEP_SIZE` (nothing to reserve: shared memory is
    /// taken when written), and `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` (zeros the range).
    /// Other modes answer `EOPNOTSUPP`. Changes go into the version being written, published at
    /// close like a write.
    public func allocate(
        inode: InodeNumber, handle: UInt64, offset: Int64, length: Int64, mode: Int32, context: RequestContext
    ) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        let keepSize = mode & Self.allocateKeepSize != 0
        let punchHole = mode & Self.allocatePunchHole != 0
        guard mode & ~(Self.allocateKeepSize | Self.allocatePunchHole) == 0, !punchHole || keepSize else {
            throw .notSupported
        }
        guard let file = writableFile(handle, inode: inode) else { throw .badFileDescriptor }
        guard offset >= 0, length > 0 else { throw .invalid }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= Int64(Int.max) else { throw .fileTooLarge }
        let node = file.node
        try namespace.withReadLock { () throws(Errno) in
            try node.lock.withLock { _ throws(Errno) in
                let size = node.file.writer?.size ?? node.file.current?.size ?? 0
                let now = Timespec.now
                if punchHole {
                    guard offset < size else { return }
                    if node.file.writer == nil { try startWriterLocked(node, keeping: nil) }
                    try zeroLocked(node, from: Int(offset), to: min(Int(end), size))
                } else if !keepSize && Int(end) > size {
                    try resizeLocked(node, to: Int(end), now: now)
                } else {
                    return
                }
                node.file.writer?.attributes.modificationTime = now
                node.file.writer?.attributes.changeTime = now
                node.file.dirtyHandles[handle] = context.pid
                mirrorWriterLocked(node)
            }
        }
    }

    /// Writes zeros over `start..<end` of the version being written. Call it with the node's
    /// lock held.
    private func zeroLocked(_ node: Node, from start: Int, to end: Int) throws(Errno) {
        guard let writer = node.file.writer else { return }
        if let failure = writer.failure { throw failure }
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: min(end - start, 1 << 20), alignment: 1)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var position = start
        while position < end {
            let count = min(zeros.count, end - position)
            try call { () throws(BackendError) in
                try writer.blob.write(at: position, UnsafeRawBufferPointer(rebasing: zeros[0..<count]))
            }
            position += count
        }
    }
}
