//
// vineyard-csi: VolumeFS
//
// RemoteOpenFile.swift: an open file of a VineyarddFileSystem: mapped chunks to read, or a writer's blobs.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import VineyardIPC

/// One open handle. Readers hold the file's chunks mapped (and so alive). Writers hold the
/// file's content as a list of blobs: leading ones shared with the named version it started
/// from (sealed, never written: a write there first copies the blob, copy-on-write), and its
/// own, unsealed and so mutable until the file is published. Guarded by the file system's lock.
final class RemoteOpenFile {
    /// One blob of the file's content.
    struct Chunk {
        var buffer: MappedBuffer
        /// Bytes of the blob in use (a writer's blob may be larger than what it holds).
        var length: Int
        /// Sealed (immutable) in vineyardd.
        var sealed: Bool
        /// This writer's alone (no named version uses it), to be given back if the writer
        /// never publishes.
        var owned: Bool
    }

    let path: String
    /// The connection generation it was opened under (see `VineyarddConnection`).
    let generation: UInt64
    let writable: Bool
    var chunks: [Chunk]
    var size: Int
    /// Written since the last publication.
    var dirty = false
    /// The first failure of a writer; every later write and the close report it.
    var failure: Errno?
    /// The named version whose blobs the writer started from (or last published).
    var sharesBlobsWith: ObjectID?
    /// That version's blobs: those the next publication no longer uses go with it.
    var baseBlobs: Set<ObjectID>
    /// The size of the named version the writer started from (or last published): the quota
    /// counts only what the writer holds beyond it.
    var quotaBase = 0

    init(path: String, generation: UInt64, writable: Bool, buffers: [MappedBuffer], lengths: [Int], object: ObjectID? = nil) {
        self.path = path
        self.generation = generation
        self.writable = writable
        self.chunks = zip(buffers, lengths).map { Chunk(buffer: $0, length: $1, sealed: true, owned: false) }
        self.sharesBlobsWith = object
        self.baseBlobs = Set(buffers.map(\.id))
        self.size = lengths.reduce(0, +)
    }

    /// Where byte `offset` lies: chunk index and offset inside it.
    func locate(_ offset: Int) -> (chunk: Int, offset: Int)? {
        var start = 0
        for (index, chunk) in chunks.enumerated() {
            if offset < start + chunk.length { return (index, offset - start) }
            start += chunk.length
        }
        return nil
    }

    /// Adds a new, empty blob of the writer's own at the end.
    func append(_ buffer: MappedBuffer) {
        chunks.append(Chunk(buffer: buffer, length: 0, sealed: false, owned: true))
    }
}
