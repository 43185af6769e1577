// vineyard-csi: VineyardSocket
// StreamTable.swift: vineyard's streams for a volume's socket whose backend does not serve them itself.

import Synchronization
import VineyardIPC

/// The streams of one volume's socket, shared by its connections (a writer and a reader are
/// different connections), with vineyardd's rules: a stream is created once for its metadata
/// object, each side is opened once, chunks are taken in the order they were queued, the chunk
/// a reader took is deleted when it asks for the next one, and a reader learns at the end that
/// the stream drained (the writer stopped) or failed (the writer gave up or the stream was dropped).
///
/// The table holds state only: blobs are allocated, sealed and deleted by the connection that
/// asks, through its own backend, so quota and ownership stay the backend's.
final class StreamTable: Sendable {
    private struct Stream {
        var openedSides = 0
        var ready: [ObjectID] = []
        var writing: ObjectID?
        var reading: ObjectID?
        var drained = false
        var failed = false
        var stopped: Bool { drained || failed }
    }

    private let streams = Mutex<[ObjectID: Stream]>([:])

    private static func missing(_ id: ObjectID, _ what: String) -> IPCError {
        IPCError(.objectNotExists, "\(what): stream \(id) does not exist")
    }

    private func update<T>(_ id: ObjectID, _ what: String, _ body: (inout Stream) throws(IPCError) -> T) throws(IPCError) -> T {
        let result: Result<T, IPCError> = streams.withLock { streams in
            guard var stream = streams[id] else { return .failure(Self.missing(id, what)) }
            do throws(IPCError) {
                let value = try body(&stream)
                streams[id] = stream
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    func create(_ id: ObjectID) throws(IPCError) {
        let created = streams.withLock { streams in
            guard streams[id] == nil else { return false }
            streams[id] = Stream()
            return true
        }
        guard created else {
            throw IPCError(.objectExists, "Failed to create the stream as it is already exists: \(id)")
        }
    }

    func open(_ id: ObjectID, mode: Int) throws(IPCError) {
        try update(id, "stream cannot be open") { (stream) throws(IPCError) in
            guard stream.openedSides & mode == 0 else { throw IPCError(.streamOpened, "Stream opened") }
            stream.openedSides |= mode
        }
    }

    /// Queues the writer's current chunk (returned, for the caller to seal first) before a new
    /// one is allocated or the writer stops.
    func finishWriting(_ id: ObjectID, _ what: String) throws(IPCError) -> ObjectID? {
        try update(id, what) { (stream) throws(IPCError) in
            guard !stream.stopped else { throw IPCError(.invalidStreamState, "!stream->drained && !stream->failed") }
            return stream.writing
        }
    }

    /// Records the sealed chunk as queued and `next` as the one being written.
    func queueWritten(_ id: ObjectID, sealed: ObjectID?, next: ObjectID?) {
        _ = try? update(id, "") { (stream) throws(IPCError) in
            if let sealed, stream.writing == sealed {
                stream.ready.append(sealed)
                stream.writing = nil
            }
            if let next { stream.writing = next }
        }
    }

    func push(_ id: ObjectID, chunk: ObjectID) throws(IPCError) {
        try update(id, "failed to push to stream") { (stream) throws(IPCError) in
            guard !stream.stopped else { throw IPCError(.invalidStreamState, "!stream->drained && !stream->failed") }
            stream.ready.append(chunk)
        }
    }

    /// The chunk the reader took last, which it gives up by pulling again (the caller deletes it).
    func releaseReading(_ id: ObjectID) throws(IPCError) -> ObjectID? {
        try update(id, "failed to pull from stream") { stream in
            defer { stream.reading = nil }
            return stream.reading
        }
    }

    /// The next chunk when there is one; `nil` while the reader must wait. Throws
    /// `StreamDrained`/`StreamFailed` at the end.
    func takeNext(_ id: ObjectID) throws(IPCError) -> ObjectID? {
        try update(id, "failed to pull from stream") { (stream) throws(IPCError) -> ObjectID? in
            if !stream.ready.isEmpty {
                let chunk = stream.ready.removeFirst()
                stream.reading = chunk
                return chunk
            }
            if stream.drained { throw IPCError(.streamDrained, "Stream drained: no more chunks") }
            if stream.failed { throw IPCError(.streamFailed, "Stream failed") }
            return nil
        }
    }

    func stop(_ id: ObjectID, failed: Bool) throws(IPCError) {
        try update(id, "failed to stop stream") { (stream) throws(IPCError) in
            guard !stream.stopped else { throw IPCError(.invalidStreamState, "Stream already stopped") }
            if failed { stream.failed = true } else { stream.drained = true }
        }
    }

    /// Forgets the stream; returns the queued chunks nobody took, for the caller to delete (the
    /// chunk being written is its writer's connection's, released when that connection ends).
    func drop(_ id: ObjectID) throws(IPCError) -> [ObjectID] {
        let dropped = streams.withLock { streams in streams.removeValue(forKey: id) }
        guard let dropped else { throw Self.missing(id, "failed to drop stream") }
        return dropped.ready
    }
}
