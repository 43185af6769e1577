// vineyard-csi: VineyardIPC
// IPCRequest.swift: the requests of vineyard's IPC protocol as typed values.

import VineyardObjects

/// A listing filter: vineyard matches names (or type names) against a glob, or a regular
/// expression when `regex` is set, and returns at most `limit` entries.
public struct IPCPattern: Hashable, Sendable {
    public var pattern: String
    public var isRegex: Bool
    public var limit: Int

    public init(pattern: String, isRegex: Bool, limit: Int) {
        self.pattern = pattern
        self.isRegex = isRegex
        self.limit = limit
    }

    /// `text` with glob metacharacters escaped, to match it literally (a name prefix).
    public static func escapingGlob(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

/// What `del_data_request` (and its `_with_feedbacks` form) asks to delete.
public struct IPCDeletion: Hashable, Sendable {
    public var ids: [ObjectID]
    /// Also delete members, recursively (the Python client's default).
    public var deep: Bool
    /// Delete members even when other objects still reference them.
    public var force: Bool
    /// Whether the reply should list the blob ids removed (`del_data_with_feedbacks_request`).
    public var wantsFeedback: Bool
    /// Give the freed memory back to the system afterwards (`delete(..., memory_trim=True)`).
    public var memoryTrim: Bool

    public init(ids: [ObjectID], deep: Bool, force: Bool, wantsFeedback: Bool, memoryTrim: Bool = false) {
        self.ids = ids
        self.deep = deep
        self.force = force
        self.wantsFeedback = wantsFeedback
        self.memoryTrim = memoryTrim
    }
}

/// One request of vineyard's IPC protocol (0.24.x), as the client sends it.
///
/// ``init(json:)`` parses a request frame and ``json`` writes one, so a server and a client can
/// share this type. Commands this codec does not model parse as ``unsupported(type:)``, which a
/// server answers with `NotImplemented` while keeping the connection.
public enum IPCRequest: Hashable, Sendable {
    /// The handshake; the only request accepted before registration.
    case register(version: String, storeType: Int, sessionID: Int64)
    /// Reserve an unsealed blob of `size` bytes in shared memory.
    case createBuffer(size: Int)
    /// Reserve several unsealed blobs.
    case createBuffers(sizes: [Int])
    /// Make a blob immutable and readable.
    case seal(ObjectID)
    /// Payloads (fd, offset, size) of blobs; `unsafe` admits unsealed ones.
    case getBuffers(ids: [ObjectID], unsafe: Bool)
    /// Abandon an unsealed blob.
    case dropBuffer(ObjectID)
    /// Shrink an unsealed blob.
    case shrinkBuffer(ObjectID, size: Int)
    /// Store a metadata tree; the reply carries the new object's id.
    case createData(content: JSONValue)
    /// Metadata trees of objects (or synthesized blob metadata).
    case getData(ids: [ObjectID], wait: Bool)
    /// Metadata trees whose type name matches.
    case listData(IPCPattern)
    case delData(IPCDeletion)
    case exists(ObjectID)
    case persist(ObjectID)
    case ifPersist(ObjectID)
    case putName(String, ObjectID)
    case getName(String, wait: Bool)
    case dropName(String)
    case listName(IPCPattern)
    /// The client gives up one use of a blob it mapped.
    case release(ObjectID)
    case increaseReferenceCount([ObjectID])
    case clusterMeta
    case instanceStatus
    /// Delete every object (`client.clear()`).
    case clear
    /// Bring an object to this instance; an object already here answers with itself.
    case migrateObject(ObjectID)
    /// Give freed memory back to the system (vineyardd answers that nothing was trimmed).
    case memoryTrim
    /// A stream request (streams pass chunks from a writer to a reader).
    case stream(IPCStreamRequest)
    /// Close the connection; no reply.
    case exit
    /// A command this codec does not model.
    case unsupported(type: String)

    /// The most blobs one batched request may name: a bound on what a request makes the
    /// server allocate.
    public static let maximumBatch = 1 << 20

    /// Parses a request frame.
    ///
    /// - Throws: ``IPCError`` (``IPCStatusCode/invalid``) naming the field that is missing or
    ///   has the wrong type.
    public init(json: JSONValue) throws(IPCError) {
        let fields = try JSONFields(json)
        switch fields.type {
        case "register_request":
            let storeType: Int
            switch fields["store_type"] {
            case nil, .null?: storeType = 1  // vineyardd reads a missing value as the normal store
            case .string("Normal")?: storeType = 1
            case .string("Plasma")?: storeType = 2
            default: storeType = try fields.int("store_type")
            }
            self = .register(
                version: try fields.string("version", default: "0.0.0"), storeType: storeType,
                sessionID: Int64(try fields.int("session_id", default: 0)))
        case "create_buffer_request":
            self = .createBuffer(size: try Self.size(fields, "size"))
        case "create_buffers_request":
            let sizes: [JSONValue]
            if let array = fields["sizes"]?.arrayValue {
                sizes = array
            } else {
                sizes = try fields.indexed(limit: Self.maximumBatch)
            }
            guard sizes.count <= Self.maximumBatch else { throw IPCError(.invalid, "too many buffers requested") }
            var parsed: [Int] = []
            for size in sizes {
                guard let value = size.int64Value, value >= 0, let size = Int(exactly: value) else {
                    throw IPCError(.invalid, "create_buffers_request: sizes must be non-negative integers")
                }
                parsed.append(size)
            }
            self = .createBuffers(sizes: parsed)
        case "seal_request":
            self = .seal(try fields.objectID("object_id"))
        case "get_buffers_request":
            let ids: [ObjectID]
            if fields["ids"] != nil {
                ids = try fields.objectIDs("ids")
            } else {
                ids = try fields.indexed(limit: Self.maximumBatch).map { (value) throws(IPCError) -> ObjectID in
                    guard let raw = value.uint64Value else {
                        throw IPCError(.invalid, "get_buffers_request: ids must be unsigned integers")
                    }
                    return ObjectID(raw)
                }
            }
            self = .getBuffers(ids: ids, unsafe: try fields.bool("unsafe", default: false))
        case "drop_buffer_request":
            self = .dropBuffer(try fields.objectID("id"))
        case "shrink_buffer_request":
            self = .shrinkBuffer(try fields.objectID("id"), size: try Self.size(fields, "size"))
        case "create_data_request":
            guard let content = fields["content"], case .object = content else {
                throw IPCError(.invalid, "create_data_request: \"content\" must be a metadata object")
            }
            self = .createData(content: content)
        case "get_data_request":
            self = .getData(ids: try fields.objectIDs("id"), wait: try fields.bool("wait", default: false))
        case "list_data_request":
            self = .listData(try Self.pattern(fields))
        case "del_data_request", "del_data_with_feedbacks_request":
            self = .delData(
                IPCDeletion(
                    ids: try fields.objectIDs("id"), deep: try fields.bool("deep", default: true),
                    force: try fields.bool("force", default: false),
                    wantsFeedback: fields.type == "del_data_with_feedbacks_request",
                    memoryTrim: try fields.bool("memory_trim", default: false)))
        case "exists_request":
            self = .exists(try fields.objectID("id"))
        case "persist_request":
            self = .persist(try fields.objectID("id"))
        case "if_persist_request":
            self = .ifPersist(try fields.objectID("id"))
        case "put_name_request":
            self = .putName(try fields.string("name"), try fields.objectID("object_id"))
        case "get_name_request":
            self = .getName(try fields.string("name"), wait: try fields.bool("wait", default: false))
        case "drop_name_request":
            self = .dropName(try fields.string("name"))
        case "list_name_request":
            self = .listName(try Self.pattern(fields))
        case "release_request":
            self = .release(try fields.objectID("object_id"))
        case "increase_reference_count_request":
            self = .increaseReferenceCount(try fields.objectIDs("ids"))
        case "cluster_meta":
            self = .clusterMeta
        case "instance_status_request":
            self = .instanceStatus
        case "clear_request":
            self = .clear
        case "exit_request":
            self = .exit
        case "migrate_object_request":
            self = .migrateObject(try fields.objectID("object_id"))
        case "memory_trim_request":
            self = .memoryTrim
        case "create_stream_request":
            self = .stream(.create(try fields.objectID("object_id")))
        case "open_stream_request":
            self = .stream(.open(try fields.objectID("object_id"), mode: try fields.int("mode")))
        case "get_next_stream_chunk_request":
            self = .stream(.nextChunk(try fields.objectID("id"), size: try Self.size(fields, "size")))
        case "push_next_stream_chunk_request":
            self = .stream(.push(try fields.objectID("id"), chunk: try fields.objectID("chunk")))
        case "pull_next_stream_chunk_request":
            self = .stream(.pull(try fields.objectID("id")))
        case "stop_stream_request":
            self = .stream(.stop(try fields.objectID("id"), failed: try fields.bool("failed", default: false)))
        case "drop_stream_request":
            self = .stream(.drop(try fields.objectID("id")))
        default:
            self = .unsupported(type: fields.type)
        }
    }

    private static func size(_ fields: JSONFields, _ key: String) throws(IPCError) -> Int {
        let size = try fields.int(key)
        guard size >= 0 else { throw IPCError(.invalid, "\(fields.type): \"\(key)\" must not be negative") }
        return size
    }

    private static func pattern(_ fields: JSONFields) throws(IPCError) -> IPCPattern {
        IPCPattern(
            pattern: try fields.string("pattern", default: "*"), isRegex: try fields.bool("regex", default: false),
            limit: max(0, try fields.int("limit", default: 5)))
    }

    /// Whether the request changes the store (refused for read-only clients).
    public var mutates: Bool {
        switch self {
        case .createBuffer, .createBuffers, .seal, .dropBuffer, .shrinkBuffer, .createData, .delData, .persist,
            .putName, .dropName, .clear, .stream:
            return true
        case .register, .getBuffers, .getData, .listData, .exists, .ifPersist, .getName, .listName, .release,
            .increaseReferenceCount, .clusterMeta, .instanceStatus, .exit, .unsupported, .migrateObject,
            .memoryTrim:
            return false
        }
    }

    /// The command name on the wire (`"create_buffer_request"`, …).
    public var type: String {
        switch self {
        case .register: return "register_request"
        case .createBuffer: return "create_buffer_request"
        case .createBuffers: return "create_buffers_request"
        case .seal: return "seal_request"
        case .getBuffers: return "get_buffers_request"
        case .dropBuffer: return "drop_buffer_request"
        case .shrinkBuffer: return "shrink_buffer_request"
        case .createData: return "create_data_request"
        case .getData: return "get_data_request"
        case .listData: return "list_data_request"
        case .delData(let deletion):
            return deletion.wantsFeedback ? "del_data_with_feedbacks_request" : "del_data_request"
        case .exists: return "exists_request"
        case .persist: return "persist_request"
        case .ifPersist: return "if_persist_request"
        case .putName: return "put_name_request"
        case .getName: return "get_name_request"
        case .dropName: return "drop_name_request"
        case .listName: return "list_name_request"
        case .release: return "release_request"
        case .increaseReferenceCount: return "increase_reference_count_request"
        case .clusterMeta: return "cluster_meta"
        case .instanceStatus: return "instance_status_request"
        case .clear: return "clear_request"
        case .exit: return "exit_request"
        case .migrateObject: return "migrate_object_request"
        case .memoryTrim: return "memory_trim_request"
        case .stream(let request): return request.type
        case .unsupported(let type): return type
        }
    }

    /// The request frame's JSON, in the form the 0.24.x C++ client writes.
    public var json: JSONValue {
        var members: [String: JSONValue] = ["type": .string(type)]
        func id(_ id: ObjectID) -> JSONValue { JSONValue(integer: id.rawValue) }
        func ids(_ ids: [ObjectID]) -> JSONValue { .array(ids.map(id)) }
        func pattern(_ pattern: IPCPattern) {
            members["pattern"] = .string(pattern.pattern)
            members["regex"] = .bool(pattern.isRegex)
            members["limit"] = JSONValue(integer: pattern.limit)
        }
        switch self {
        case .register(let version, let storeType, let sessionID):
            members["version"] = .string(version)
            members["store_type"] = JSONValue(integer: storeType)
            members["session_id"] = .int(sessionID)
            members["username"] = ""
            members["password"] = ""
        case .createBuffer(let size):
            members["size"] = JSONValue(integer: size)
        case .createBuffers(let sizes):
            members["num"] = JSONValue(integer: sizes.count)
            members["sizes"] = .array(sizes.map { JSONValue(integer: $0) })
        case .seal(let object):
            members["object_id"] = id(object)
        case .getBuffers(let blobs, let unsafe):
            members["num"] = JSONValue(integer: blobs.count)
            for (index, blob) in blobs.enumerated() { members[String(index)] = id(blob) }
            members["unsafe"] = .bool(unsafe)
        case .dropBuffer(let blob):
            members["id"] = id(blob)
        case .shrinkBuffer(let blob, let size):
            members["id"] = id(blob)
            members["size"] = JSONValue(integer: size)
        case .createData(let content):
            members["content"] = content
        case .getData(let objects, let wait):
            members["id"] = ids(objects)
            members["sync_remote"] = true
            members["wait"] = .bool(wait)
        case .listData(let filter), .listName(let filter):
            pattern(filter)
        case .delData(let deletion):
            members["id"] = ids(deletion.ids)
            members["deep"] = .bool(deletion.deep)
            members["force"] = .bool(deletion.force)
            members["fastpath"] = false
            members["memory_trim"] = .bool(deletion.memoryTrim)
        case .exists(let object), .persist(let object), .ifPersist(let object):
            members["id"] = id(object)
        case .putName(let name, let object):
            members["name"] = .string(name)
            members["object_id"] = id(object)
        case .getName(let name, let wait):
            members["name"] = .string(name)
            members["wait"] = .bool(wait)
        case .dropName(let name):
            members["name"] = .string(name)
        case .release(let object):
            members["object_id"] = id(object)
        case .increaseReferenceCount(let objects):
            members["ids"] = ids(objects)
        case .migrateObject(let object):
            members["object_id"] = id(object)
        case .stream(let request):
            members.merge(request.members, uniquingKeysWith: { _, new in new })
        case .clusterMeta, .instanceStatus, .clear, .exit, .unsupported, .memoryTrim:
            break
        }
        return .object(members)
    }
}
