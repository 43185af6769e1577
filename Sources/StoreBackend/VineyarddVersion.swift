// vineyard-csi: StoreBackend
// VineyarddVersion.swift: a file's next version in vineyardd blobs: writes anywhere, holes, truncation, copy-on-write.

import POSIXCore
import VineyardIPC

/// A file's next version in vineyardd.
///
/// vineyard blobs are immutable once sealed and fixed in size, but an unsealed blob is plain
/// shared memory its creator may write at will. So a version is a list of blobs: leading ones
/// shared with the version it started from (sealed, mapped by that version's readers, never
/// written: a write there first copies the blob, copy-on-write), and its own, unsealed until
/// the version is published. Each new blob is as large as the file so far (at least
/// ``firstChunk``, at most ``largestChunk``), so a file of n bytes takes O(log n) blobs and
/// wastes under half. Guarded by the caller (one writer lock per file).
final class VineyarddVersion: FileVersion, @unchecked Sendable {
    static let firstChunk = 1 << 20
    static let largestChunk = 64 << 20

    /// One blob of the version's content.
    struct Chunk {
        var buffer: MappedBuffer
        /// Bytes of the blob in use (an own blob may be larger than what it holds).
        var length: Int
        /// Sealed (immutable) in vineyardd.
        var sealed: Bool
        /// This version's alone (no published version uses it), given back if it is discarded.
        var owned: Bool
    }

    let backend: VineyarddBackend
    /// The connection generation it was started under (see ``VineyarddConnection``).
    let generation: UInt64
    /// The version it started from, kept mapped while it shares its blobs.
    let base: VineyarddFile?
    /// That version's blobs.
    let baseBlobs: Set<ObjectID>
    private(set) var chunks: [Chunk]
    private(set) var size: Int

    init(backend: VineyarddBackend, generation: UInt64, base: VineyarddFile?) {
        self.backend = backend
        self.generation = generation
        self.base = base
        let buffers = base?.buffers ?? []
        self.baseBlobs = Set(buffers.map(\.id))
        self.chunks = buffers.map { Chunk(buffer: $0, length: $0.bytes.count, sealed: true, owned: false) }
        self.size = base?.size ?? 0
    }

    var extent: VersionExtent? { nil }

    /// `EIO` when vineyardd restarted since the version started: its blobs belong to the
    /// instance that went away.
    func checkGeneration() throws(BackendError) {
        let (_, current) = try backend.connection.current()
        guard current == generation else { throw BackendError(errno: .io, underlying: MissingName(name: "memory of a restarted vineyardd")) }
    }

    /// Where byte `offset` lies: chunk index and offset inside it.
    private func locate(_ offset: Int) -> (chunk: Int, offset: Int)? {
        var start = 0
        for (index, chunk) in chunks.enumerated() {
            if offset < start + chunk.length { return (index, offset - start) }
            start += chunk.length
        }
        return nil
    }

    func write(at offset: Int, _ data: UnsafeRawBufferPointer) throws(BackendError) {
        try checkGeneration()
        guard offset >= 0, Int.max - offset >= data.count else {
            throw BackendError(errno: .invalid, underlying: MissingName(name: "a write at \(offset)"))
        }
        try grow(to: offset + data.count, zeroingBelow: offset)
        var written = 0
        while written < data.count, let at = locate(offset + written) {
            try makeWritable(at.chunk)
            let take = min(chunks[at.chunk].length - at.offset, data.count - written)
            (chunks[at.chunk].buffer.mutableBytes.baseAddress! + at.offset)
                .copyMemory(from: data.baseAddress! + written, byteCount: take)
            written += take
        }
    }

    /// Shorter drops the tail (the chunk holding the new end keeps a prefix, of a sealed blob
    /// too: the version only records how much of it is its); longer adds zeros.
    func truncate(to newSize: Int) throws(BackendError) {
        try checkGeneration()
        guard newSize >= 0 else { throw BackendError(errno: .invalid, underlying: MissingName(name: "a size of \(newSize)")) }
        if newSize > size {
            try grow(to: newSize, zeroingBelow: newSize)
        } else if newSize < size {
            var start = 0
            var keep = 0
            while keep < chunks.count, start + chunks[keep].length < newSize {
                start += chunks[keep].length
                keep += 1
            }
            if keep < chunks.count {
                chunks[keep].length = newSize - start
                if chunks[keep].length > 0 { keep += 1 }
            }
            let dropped = chunks[keep...].filter(\.owned)
            chunks.removeSubrange(keep...)
            giveBack(dropped)
            size = newSize
        }
    }

    func read(at offset: Int, count: Int) throws(BackendError) -> [UInt8] {
        try checkGeneration()
        guard case .mapped(let pieces, let keepAlive) = VineyarddFile.pieces(
            of: chunks.map { ($0.buffer, $0.length) }, at: offset, count: min(count, max(0, size - offset)))
        else { return [] }
        var bytes: [UInt8] = []
        for piece in pieces { bytes.append(contentsOf: piece) }
        withExtendedLifetime(keepAlive) {}
        return bytes
    }

    func discard() {
        giveBack(chunks.filter(\.owned))
        chunks.removeAll()
        size = 0
    }

    /// Extends the version to `newSize` with new bytes; those below `zeroingBelow` are zeroed
    /// (vineyardd does not clear reused memory), the rest the caller writes next.
    private func grow(to newSize: Int, zeroingBelow: Int) throws(BackendError) {
        guard newSize > size else { return }
        func fill(_ chunk: Int, from: Int, count: Int) {
            let zeros = min(count, max(0, zeroingBelow - size))
            if zeros > 0 {
                (chunks[chunk].buffer.mutableBytes.baseAddress! + from).initializeMemory(as: UInt8.self, repeating: 0, count: zeros)
            }
            chunks[chunk].length += count
            size += count
        }
        // The last blob's spare room first, if it is this version's and still mutable; then new
        // blobs, all created before the version changes, so a failure leaves it as it was.
        var room = 0
        if let last = chunks.last, !last.sealed { room = last.buffer.bytes.count - last.length }
        var buffers: [MappedBuffer] = []
        var planned = size + room
        do throws(BackendError) {
            while planned < newSize {
                let capacity = min(Self.largestChunk, max(Self.firstChunk, planned))
                buffers.append(try backend.connection.with { (client) throws(VineyardClientError) in try client.createBuffer(size: capacity) })
                planned += capacity
            }
        } catch {
            giveBack(buffers.map { Chunk(buffer: $0, length: 0, sealed: false, owned: true) })
            throw error
        }
        if room > 0 { fill(chunks.count - 1, from: chunks[chunks.count - 1].length, count: min(room, newSize - size)) }
        for buffer in buffers {
            chunks.append(Chunk(buffer: buffer, length: 0, sealed: false, owned: true))
            fill(chunks.count - 1, from: 0, count: min(buffer.bytes.count, newSize - size))
        }
    }

    /// Copies a sealed chunk into a new blob of the version's own, so it can be written.
    private func makeWritable(_ index: Int) throws(BackendError) {
        let old = chunks[index]
        guard old.sealed else { return }
        let copy = try backend.connection.with { (client) throws(VineyardClientError) in try client.createBuffer(size: max(old.length, 1)) }
        copy.mutableBytes.baseAddress!.copyMemory(from: old.buffer.bytes.baseAddress!, byteCount: old.length)
        if old.owned { giveBack([old]) }
        chunks[index] = Chunk(buffer: copy, length: old.length, sealed: false, owned: true)
    }

    /// Seals every blob still open for writing (before the version is named).
    func sealAll() throws(BackendError) {
        for index in chunks.indices where !chunks[index].sealed {
            let id = chunks[index].buffer.id
            try backend.connection.with { (client) throws(VineyardClientError) in try client.seal(id) }
            chunks[index].sealed = true
        }
    }

    /// The version is named: its blobs belong to the published file now.
    func published() {
        for index in chunks.indices { chunks[index].owned = false }
    }

    /// Gives back blobs only this version used: sealed ones are deleted, unsealed ones dropped.
    /// Blobs of a vineyardd that went away are gone with it; their ids never go to another.
    private func giveBack(_ dropped: [Chunk]) {
        guard !dropped.isEmpty, let (client, current) = try? backend.connection.current(), current == generation else { return }
        for chunk in dropped {
            if chunk.sealed { try? client.delete([chunk.buffer.id]) } else { try? client.dropBuffer(chunk.buffer.id) }
        }
    }
}
