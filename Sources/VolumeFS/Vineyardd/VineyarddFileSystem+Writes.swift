//
// vineyard-csi: VolumeFS
//
// VineyarddFileSystem+Writes.swift: a writer's content in vineyardd blobs: writes anywhere, holes, truncation, copy-on-write.

import FUSEKit
import Glibc
import SharedMemoryStore
import StoreBackend
import VineyardIPC

/// How a writer changes its file (all under the file system's lock).
///
/// vineyard blobs are immutable once sealed, but an unsealed blob is plain shared memory its
/// creator may write at will. So a writer keeps what it writes in unsealed blobs of its own and
/// seals them only when it publishes the file; a write into a blob of the named version (sealed,
/// and mapped by readers of that version) first copies that blob into a new one of its own.
/// Readers keep seeing the named version until the writer publishes.
extension VineyarddFileSystem {
    /// Writes `data` at `offset`, growing the file (a gap before `offset` reads as zeros).
    func write(_ file: RemoteOpenFile, at offset: Int, _ data: UnsafeRawBufferPointer) throws(Errno) {
        guard offset >= 0, Int.max - offset >= data.count else { throw .invalid }
        try grow(file, to: offset + data.count, zeroingBelow: offset)
        var written = 0
        while written < data.count, let at = file.locate(offset + written) {
            try makeWritable(file, at.chunk)
            let take = min(file.chunks[at.chunk].length - at.offset, data.count - written)
            (file.chunks[at.chunk].buffer.mutableBytes.baseAddress! + at.offset)
                .copyMemory(from: data.baseAddress! + written, byteCount: take)
            written += take
        }
        file.dirty = true
        state.writing[file.path] = file.size
    }

    /// Sets the file's length: shorter drops the tail, longer adds zeros.
    func resize(_ file: RemoteOpenFile, to newSize: Int) throws(Errno) {
        guard newSize >= 0 else { throw .invalid }
        if newSize > file.size {
            try grow(file, to: newSize, zeroingBelow: newSize)
        } else if newSize < file.size {
            // The chunk holding the new end keeps a prefix (of a sealed blob too: the file only
            // records how much of it is its); the chunks after it go.
            var start = 0
            var keep = 0
            while keep < file.chunks.count, start + file.chunks[keep].length < newSize {
                start += file.chunks[keep].length
                keep += 1
            }
            if keep < file.chunks.count {
                file.chunks[keep].length = newSize - start
                if file.chunks[keep].length > 0 { keep += 1 }
            }
            let dropped = file.chunks[keep...].filter(\.owned).map { ($0.buffer.id, $0.sealed) }
            file.chunks.removeSubrange(keep...)
            try? giveBack(dropped, of: file)
            quotaRelease(file, bytes: file.size - newSize)
            file.size = newSize
        }
        file.dirty = true
        state.writing[file.path] = file.size
    }

    /// Extends the file to `newSize` (if shorter) with new bytes; those below `zeroingBelow`
    /// are zeroed (vineyardd does not clear reused memory), the rest the caller writes next.
    private func grow(_ file: RemoteOpenFile, to newSize: Int, zeroingBelow: Int) throws(Errno) {
        guard newSize > file.size else { return }
        try quotaReserve(file, bytes: newSize - file.size)
        func fill(_ chunk: Int, from: Int, count: Int) {
            let position = file.size  // the file position of the first new byte
            let zeros = min(count, max(0, zeroingBelow - position))
            if zeros > 0 { (file.chunks[chunk].buffer.mutableBytes.baseAddress! + from).initializeMemory(as: UInt8.self, repeating: 0, count: zeros) }
            file.chunks[chunk].length += count
            file.size += count
        }
        // The last blob's spare room first, if it is this writer's and still mutable; then new
        // blobs, all created before the file changes, so a failure leaves it as it was.
        var room = 0
        if let last = file.chunks.last, !last.sealed { room = last.buffer.bytes.count - last.length }
        var buffers: [MappedBuffer] = []
        var planned = file.size + room
        do throws(Errno) {
            while planned < newSize {
                let capacity = min(Self.largestChunk, max(Self.firstChunk, planned))
                buffers.append(try connection.call { (client) throws(VineyardClientError) in try client.createBuffer(size: capacity) })
                planned += capacity
            }
        } catch {
            try? giveBack(buffers.map { ($0.id, false) }, of: file)
            quotaCancel(file, bytes: newSize - file.size)
            throw error
        }
        if room > 0 { fill(file.chunks.count - 1, from: file.chunks[file.chunks.count - 1].length, count: min(room, newSize - file.size)) }
        for buffer in buffers {
            file.append(buffer)
            fill(file.chunks.count - 1, from: 0, count: min(buffer.bytes.count, newSize - file.size))
        }
    }

    /// Copies a sealed chunk into a new blob of the writer's own, so it can be written.
    private func makeWritable(_ file: RemoteOpenFile, _ index: Int) throws(Errno) {
        let old = file.chunks[index]
        guard old.sealed else { return }
        let copy = try connection.call { (client) throws(VineyardClientError) in try client.createBuffer(size: max(old.length, 1)) }
        copy.mutableBytes.baseAddress!.copyMemory(from: old.buffer.bytes.baseAddress!, byteCount: old.length)
        if old.owned { try? giveBack([(old.buffer.id, true)], of: file) }
        file.chunks[index] = RemoteOpenFile.Chunk(buffer: copy, length: old.length, sealed: false, owned: true)
    }

    /// Seals every blob the writer still has open for writing (before it names the file).
    func sealAll(_ file: RemoteOpenFile) throws(Errno) {
        for index in file.chunks.indices where !file.chunks[index].sealed {
            let id = file.chunks[index].buffer.id
            try connection.call { (client) throws(VineyardClientError) in try client.seal(id) }
            file.chunks[index].sealed = true
        }
    }

    /// Gives back blobs only this writer used: sealed ones are deleted, unsealed ones dropped.
    /// Blobs of a vineyardd that went away are gone with it; their ids never go to another.
    func giveBack(_ blobs: [(id: ObjectID, sealed: Bool)], of file: RemoteOpenFile) throws(Errno) {
        guard !blobs.isEmpty, let (_, generation) = try? connection.currentClient(), generation == file.generation else { return }
        try connection.call { (client) throws(VineyardClientError) in
            for blob in blobs {
                if blob.sealed { try client.delete([blob.id]) } else { try client.dropBuffer(blob.id) }
            }
        }
    }
}
