// vineyard-csi: VineyardIPC
// IPCStreamRequest.swift: the stream requests of vineyard's IPC protocol.

import VineyardObjects

/// A request on a stream: an object whose chunks a writer appends and a reader takes in order
/// (vineyard.io's byte, record-batch and data-frame streams).
public enum IPCStreamRequest: Hashable, Sendable {
    /// Start serving the stream whose metadata object is `id`.
    case create(ObjectID)
    /// Take the stream's reader (`mode` 1) or writer (`mode` 2) side.
    case open(ObjectID, mode: Int)
    /// Allocate the writer's next chunk, a blob of `size` bytes (the previous one is sealed and queued).
    case nextChunk(ObjectID, size: Int)
    /// Queue an object as the stream's next chunk.
    case push(ObjectID, chunk: ObjectID)
    /// Take the next chunk, waiting for one (the chunk taken before is deleted).
    case pull(ObjectID)
    /// The writer finished (`failed`: gave up).
    case stop(ObjectID, failed: Bool)
    /// Forget the stream and delete the chunks nobody read.
    case drop(ObjectID)

    /// The stream the request is about.
    public var stream: ObjectID {
        switch self {
        case .create(let id), .open(let id, _), .nextChunk(let id, _), .push(let id, _), .pull(let id),
            .stop(let id, _), .drop(let id):
            return id
        }
    }

    public var type: String {
        switch self {
        case .create: return "create_stream_request"
        case .open: return "open_stream_request"
        case .nextChunk: return "get_next_stream_chunk_request"
        case .push: return "push_next_stream_chunk_request"
        case .pull: return "pull_next_stream_chunk_request"
        case .stop: return "stop_stream_request"
        case .drop: return "drop_stream_request"
        }
    }

    /// The request's members besides `type`, as the 0.24.x C++ client writes them.
    var members: [String: JSONValue] {
        func id(_ id: ObjectID) -> JSONValue { JSONValue(integer: id.rawValue) }
        switch self {
        case .create(let stream): return ["object_id": id(stream)]
        case .open(let stream, let mode): return ["object_id": id(stream), "mode": JSONValue(integer: mode)]
        case .nextChunk(let stream, let size): return ["id": id(stream), "size": JSONValue(integer: size)]
        case .push(let stream, let chunk): return ["id": id(stream), "chunk": id(chunk)]
        case .pull(let stream), .drop(let stream): return ["id": id(stream)]
        case .stop(let stream, let failed): return ["id": id(stream), "failed": .bool(failed)]
        }
    }
}
