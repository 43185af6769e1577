//
// vineyard-csi: VolumeFS
//
// RemoteOpenFile.swift: an open file of a VineyarddFileSystem: mapped chunks to read, or a writer's blobs.

import FUSEKit
import SharedMemoryStore
import VineyardIPC

/// One open handle. Readers hold the file's chunks mapped (and so alive); writers hold the
/// blobs they fill, the last one possibly unsealed. Guarded by the file system's lock.
final class RemoteOpenFile {
    let path: String
    /// The connection generation it was opened under (see ``VineyarddConnection``).
    let generation: UInt64
    let writable: Bool
    var chunks: [MappedBuffer]
    /// Bytes of each chunk in use (a writer's last blob is larger than what is written).
    var lengths: [Int]
    /// Chunks already sealed (readers: all; writers: all but maybe the last).
    var sealed: Int
    var size: Int
    /// Written since the last publication.
    var dirty = false
    /// The first failure of a writer; every later write and the close report it.
    var failure: Errno?
    /// Leading chunks that belong to a named version (the one appended to, or this writer's
    /// last publication): never this writer's to delete.
    var referenced: Int
    /// The named version whose blobs are those leading chunks; replacing it must keep them.
    var sharesBlobsWith: ObjectID?

    init(path: String, generation: UInt64, writable: Bool, chunks: [MappedBuffer], lengths: [Int], object: ObjectID? = nil) {
        self.path = path
        self.generation = generation
        self.writable = writable
        self.chunks = chunks
        self.lengths = lengths
        self.sealed = chunks.count
        self.referenced = chunks.count
        self.sharesBlobsWith = object
        self.size = lengths.reduce(0, +)
    }

    /// Where byte `offset` lies: chunk index and offset inside it.
    func locate(_ offset: Int) -> (chunk: Int, offset: Int)? {
        var start = 0
        for (index, length) in lengths.enumerated() {
            if offset < start + length { return (index, offset - start) }
            start += length
        }
        return nil
    }
}
