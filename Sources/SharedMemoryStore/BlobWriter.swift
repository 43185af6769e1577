// vineyard-csi: SharedMemoryStore
// BlobWriter.swift: writing an unsealed blob.

import Glibc
import Synchronization

/// The writer of one unsealed blob.
///
/// A blob grows while it is written: `append(_:)` adds at the end; `write(at:_:)`
/// writes anywhere, and writing past the end fills the gap with zeros; ``truncate(to:)``
/// shortens or zero-extends. Bytes go straight into shared memory: a range of the arena, or the
/// blob's own file (see ``StoreConfiguration/blobFileThreshold``). Nothing is visible to
/// readers until ``ObjectStore/seal(_:meta:name:)``; after that the writer rejects changes with
/// ``StoreError/alreadySealed``.
///
/// **Growth.** The writer reserves capacity ahead of its size. When a write needs more, it first
/// tries to extend the reservation in place; otherwise it reserves about twice as much
/// elsewhere (at least the needed size; at most 1 GiB more), copies the bytes written so far
/// and frees the old range. Declaring the size in
/// ``ObjectStore/createBlob(expectedSize:writtenElsewhere:)`` avoids moves.
/// A move changes ``location``, so hand a location to another process only for a blob whose
/// size is fixed within its reservation (as vineyard's `create_buffer` does).
/// A blob in its own file never moves: growing extends the file (`ftruncate` and `fallocate`)
/// and its mapping, copying nothing; the mapping's address may change, the file's bytes do not.
/// An arena blob whose growth reaches the threshold moves into a file of its own once.
///
/// **Threads.** A writer is `Sendable`; its operations are serialized by its own lock, which
/// is held during the copy.
///
/// **Lifetime.** Dropping the last reference to an unsealed writer (or calling ``discard()``,
/// or ``ObjectStore/delete(_:)`` with its identifier) frees its memory. The store never logs
/// unsealed blobs, so a crash discards them too.
public final class BlobWriter: Sendable {
    enum Status: Sendable {
        case open, sealed, discarded
    }

    struct State: Sendable {
        var extent: Extent?
        var file: BlobFile?
        var size: Int
        var status: Status

        var capacity: Int { extent?.length ?? file?.length ?? 0 }

        /// What the blob's memory is, if it has any.
        var storage: BlobStorage? {
            if let file { return .file(file) }
            return extent.map { .arena($0) }
        }

        func checkOpen() throws(StoreError) {
            switch status {
            case .open: return
            case .sealed: throw StoreError.alreadySealed
            case .discarded: throw StoreError.writerDiscarded
            }
        }
    }

    /// The blob's identifier (bit 63 set), assigned at creation and kept when sealed.
    public let id: ObjectID
    let store: ObjectStore
    let state: Mutex<State>
    /// Where growth may take the blob.
    let placement: BlobPlacement

    init(store: ObjectStore, id: ObjectID, storage: BlobStorage?, placement: BlobPlacement) {
        self.store = store
        self.id = id
        self.placement = placement
        self.state = Mutex(State(extent: storage?.extent, file: storage?.file, size: 0, status: .open))
    }

    deinit {
        let (status, storage) = state.withLock { ($0.status, $0.storage) }
        if status == .open { store.discardPending(id, storage: storage) }
    }

    // MARK: - Properties

    /// Bytes written so far (the highest written offset, or the truncated size).
    public var size: Int { state.withLock { $0.size } }

    /// Bytes reserved; writes below this never move the blob.
    public var capacity: Int { state.withLock { $0.capacity } }

    /// Whether the blob was sealed.
    public var isSealed: Bool { state.withLock { $0.status == .sealed } }

    /// Where the blob's bytes currently are: offset of the reservation and the current size.
    /// For an empty reservation the offset is 0. For a blob in its own file, the file
    /// (``BlobLocation/isOwnFile``, offset 0).
    public var location: BlobLocation {
        state.withLock { state in
            if let file = state.file { return BlobLocation(file: file.path, size: state.size) }
            return BlobLocation(arena: 0, offset: state.extent?.offset ?? 0, size: state.size)
        }
    }

    /// The arena's descriptor (see ``ArenaInfo/fileDescriptor``), or -1 for a blob in its own
    /// file (use ``openFile()``).
    public var fileDescriptor: Int32 { state.withLock { $0.file == nil } ? store.arena.fileDescriptor : -1 }

    /// Opens a read-write descriptor of the blob's own file (the caller closes it), for a client
    /// that writes the bytes through its own mapping at offset 0. The file keeps its identity
    /// while the blob grows and after sealing.
    ///
    /// - Returns: a new descriptor.
    /// - Throws: ``StoreError/invalidArgument(_:)`` for a blob in the arena (use
    ///   ``fileDescriptor`` and ``location``), ``StoreError/alreadySealed`` (use
    ///   ``ObjectStore/openBlobFile(_:)``), ``StoreError/writerDiscarded``, or the failing `open`.
    public func openFile() throws(StoreError) -> Int32 {
        try state.withLock { (state) throws(StoreError) -> Int32 in
            try state.checkOpen()
            guard let file = state.file else { throw StoreError.invalidArgument("blob \(id) is in the arena") }
            return try file.open(writable: true)
        }
    }

    /// The writable address of the blob's byte 0, if it has memory.
    private func base(_ state: State) -> UnsafeMutableRawPointer? {
        state.storage?.base(in: store.arena)
    }

    // MARK: - Writing

    /// Writes bytes at an offset, growing the blob (zero-filling any gap) if needed. Writing
    /// no bytes changes nothing, even past the end.
    ///
    /// - Parameters:
    ///   - offset: where to write; may be past the end.
    ///   - bytes: what to write.
    /// - Throws: ``StoreError/outOfMemory(requested:available:)`` when the blob cannot grow
    ///   (the blob is unchanged), ``StoreError/alreadySealed``, ``StoreError/writerDiscarded``,
    ///   ``StoreError/invalidArgument(_:)`` for a negative offset.
    public func write(at offset: Int, _ bytes: UnsafeRawBufferPointer) throws(StoreError) {
        guard offset >= 0 else { throw .invalidArgument("negative offset \(offset)") }
        let (end, overflow) = offset.addingReportingOverflow(bytes.count)
        guard !overflow else { throw .invalidArgument("offset \(offset) + \(bytes.count) overflows") }
        try state.withLock { (state) throws(StoreError) in
            try state.checkOpen()
            guard bytes.count > 0 else { return }  // like pwrite(2): writing nothing extends nothing
            // A file of its own grows unpopulated and is written with pwrite(2): one pass over
            // fresh pages instead of zeroing them through the mapping and copying over them.
            let direct = bytes.count >= Self.pwriteMinimum && state.file != nil
            if end > state.capacity { try grow(&state, to: end, populate: !direct) }
            guard let base = base(state) else { return }
            if offset > state.size { memset(base + state.size, 0, offset - state.size) }
            if direct, let file = state.file {
                try file.write(bytes, at: offset)
            } else {
                (base + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
            state.size = max(state.size, end)
        }
    }

    /// Writes an array of bytes at an offset; see `write(at:_:)`.
    public func write(at offset: Int, _ bytes: [UInt8]) throws(StoreError) {
        try bytes.withBytes { (raw) throws(StoreError) in try write(at: offset, raw) }
    }

    /// Appends bytes at the end.
    ///
    /// - Parameter bytes: what to append.
    /// - Throws: as `write(at:_:)`.
    public func append(_ bytes: UnsafeRawBufferPointer) throws(StoreError) {
        try state.withLock { (state) throws(StoreError) in
            try state.checkOpen()
            let offset = state.size
            let end = offset + bytes.count
            if end > state.capacity { try grow(&state, to: end) }
            if let base = base(state), let source = bytes.baseAddress, bytes.count > 0 {
                (base + offset).copyMemory(from: source, byteCount: bytes.count)
            }
            state.size = end
        }
    }

    /// Appends an array of bytes; see `append(_:)`.
    public func append(_ bytes: [UInt8]) throws(StoreError) {
        try bytes.withBytes { (raw) throws(StoreError) in try append(raw) }
    }

    /// Sets the size: shortening drops bytes at the end; lengthening appends zeros (unless
    /// `zeroFill` is false, for a caller that will overwrite every byte anyway).
    ///
    /// - Parameters:
    ///   - size: the new size.
    ///   - zeroFill: whether bytes added by lengthening are zeroed.
    /// - Throws: as `write(at:_:)`.
    public func truncate(to size: Int, zeroFill: Bool = true) throws(StoreError) {
        guard size >= 0 else { throw .invalidArgument("negative size \(size)") }
        try state.withLock { (state) throws(StoreError) in
            try state.checkOpen()
            if size > state.capacity { try grow(&state, to: size) }
            if size > state.size, zeroFill, let base = base(state) {
                memset(base + state.size, 0, size - state.size)
            }
            state.size = size
        }
    }

    /// Reserves capacity for at least `capacity` bytes without changing the size.
    ///
    /// - Throws: as `write(at:_:)`.
    public func reserve(_ capacity: Int) throws(StoreError) {
        guard capacity >= 0 else { throw .invalidArgument("negative capacity \(capacity)") }
        try state.withLock { (state) throws(StoreError) in
            try state.checkOpen()
            if capacity > state.capacity { try grow(&state, to: capacity, exact: true) }
        }
    }

    /// Gives direct access to the reserved memory (`capacity` bytes; the first `size` are the
    /// blob) under the writer's lock, for zero-copy producers such as a `read(2)` from a socket
    /// or a splice. Bytes written beyond `size` count only after ``truncate(to:zeroFill:)``.
    ///
    /// - Parameter body: receives the buffer; must not keep it.
    /// - Returns: what `body` returns.
    /// - Throws: ``StoreError/alreadySealed`` or ``StoreError/writerDiscarded``.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) throws(StoreError) -> R {
        try state.withLock { (state) throws(StoreError) -> R in
            try state.checkOpen()
            guard let base = base(state), state.capacity > 0 else {
                return body(UnsafeMutableRawBufferPointer(start: nil, count: 0))
            }
            return body(UnsafeMutableRawBufferPointer(start: base, count: state.capacity))
        }
    }

    /// Reads back the bytes written so far (`size` bytes), under the writer's lock.
    ///
    /// - Parameter body: receives the bytes; must not keep them.
    /// - Returns: what `body` returns.
    /// - Throws: ``StoreError/alreadySealed`` (read a sealed blob through an
    ///   ``ObjectHandle``) or ``StoreError/writerDiscarded``.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) throws(StoreError) -> R {
        try state.withLock { (state) throws(StoreError) -> R in
            try state.checkOpen()
            guard let base = base(state), state.size > 0 else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
            return body(UnsafeRawBufferPointer(start: base, count: state.size))
        }
    }

    /// Abandons the blob and frees its memory. Does nothing if it is already sealed or
    /// discarded.
    ///
    /// - Returns: whether this call discarded it.
    @discardableResult
    public func discard() -> Bool {
        state.withLock { state in
            guard state.status == .open else { return false }
            store.discardPending(id, storage: state.storage)
            state.extent = nil
            state.file = nil
            state.size = 0
            state.status = .discarded
            return true
        }
    }

    // MARK: - Growth

    /// Makes room for `needed` bytes: in place if possible, else by moving (within the arena,
    /// or once into a file of its own when the reservation reaches the threshold).
    /// Writes at least this long go to a blob's own file with `pwrite(2)` (shorter ones are
    /// cheaper as a copy into the mapping than as three system calls).
    static let pwriteMinimum = 64 << 10

    private func grow(_ state: inout State, to needed: Int, exact: Bool = false, populate: Bool = true) throws(StoreError) {
        let currentLength = state.capacity
        let doubled = currentLength == 0 ? 4096 : currentLength + min(currentLength, 1 << 30)
        let target = exact ? needed : max(needed, doubled)
        if state.file != nil {
            do throws(StoreError) {
                try store.growFile(&state.file!, to: target, populate: populate)
            } catch {
                guard case .outOfMemory = error, target > needed else { throw error }
                try store.growFile(&state.file!, to: needed, populate: populate)
            }
            return
        }
        if store.belongsInOwnFile(target, placement: placement) {
            try moveIntoFile(&state, target: target, needed: needed)
            return
        }
        let current = state.extent
        if let current {
            if let grown = try store.extendBacked(current, to: target) {
                state.extent = grown
                return
            }
            if target > needed, let grown = try store.extendBacked(current, to: needed) {
                state.extent = grown
                return
            }
        }
        let moved: Extent
        do throws(StoreError) {
            moved = try store.allocateBacked(target)
        } catch {
            guard case .outOfMemory = error, target > needed else { throw error }
            moved = try store.allocateBacked(needed)
        }
        if let current {
            if state.size > 0 {
                store.arena.pointer(at: moved.offset).copyMemory(
                    from: store.arena.pointer(at: current.offset), byteCount: state.size)
            }
            store.freeExtent(current)
        }
        state.extent = moved
    }

    /// Moves an arena blob into a new file of its own (copying what it holds, once).
    private func moveIntoFile(_ state: inout State, target: Int, needed: Int) throws(StoreError) {
        var file: BlobFile
        do throws(StoreError) {
            file = try store.createFile(for: id, length: target, populate: true)
        } catch {
            guard case .outOfMemory = error, target > needed else { throw error }
            file = try store.createFile(for: id, length: needed, populate: true)
        }
        if let current = state.extent {
            if state.size > 0, let base = file.base {
                base.copyMemory(from: store.arena.pointer(at: current.offset), byteCount: state.size)
            }
            store.freeExtent(current)
            state.extent = nil
        }
        state.file = file
    }
}
