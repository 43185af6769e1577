// vineyard-csi: VineyardIPC
// IPCReply.swift: the replies of vineyard's IPC protocol as typed values.

import VineyardObjects

/// What the server says about itself in the handshake.
public struct IPCServerInfo: Hashable, Sendable {
    public var instanceID: UInt64
    /// The socket path the server reports; clients only display it and compare it with
    /// `cluster_meta`.
    public var ipcSocket: String
    /// `"0.0.0.0:0"` when RPC is disabled, as vineyardd reports it.
    public var rpcEndpoint: String
    /// The version reported: clients warn unless the major matches theirs and the minor is
    /// at least theirs.
    public var version: String

    public init(instanceID: UInt64, ipcSocket: String, rpcEndpoint: String = "0.0.0.0:0", version: String = "0.24.2") {
        self.instanceID = instanceID
        self.ipcSocket = ipcSocket
        self.rpcEndpoint = rpcEndpoint
        self.version = version
    }
}

/// One successful reply of vineyard's IPC protocol. Failures are ``IPCError`` frames instead.
///
/// Replies that hand out buffers say in `fds` which descriptors follow the frame as
/// `SCM_RIGHTS` messages (see ``IPCConnection``); the list is part of the JSON because the
/// client checks it against what it expects to receive.
public enum IPCReply: Hashable, Sendable {
    case register(IPCServerInfo, sessionID: Int64, storeMatch: Bool)
    /// `fd` is the descriptor sent after this reply, or -1 when the client has it already.
    case createBuffer(IPCPayload, fd: Int32)
    case createBuffers([IPCPayload], fds: [Int32])
    case seal
    case getBuffers([IPCPayload], fds: [Int32])
    case dropBuffer
    case shrinkBuffer
    case createData(id: ObjectID, signature: UInt64, instanceID: UInt64)
    /// Trees keyed by object id; `get_data_reply` for both `get_data` and `list_data`.
    case getData([ObjectID: JSONValue])
    /// `deletedBlobs` is non-nil for `del_data_with_feedbacks_request`.
    case delData(deletedBlobs: [ObjectID]?)
    case exists(Bool)
    case persist
    case ifPersist(Bool)
    case putName
    case getName(ObjectID)
    case dropName
    case listName([(name: String, id: ObjectID)])
    case release
    case increaseReferenceCount
    /// `cluster_meta`'s `meta` member: one entry per instance.
    case clusterMeta(JSONValue)
    /// `instance_status_reply`'s `meta` member.
    case instanceStatus(JSONValue)
    case clear
    /// The object's id on this instance after migration.
    case migrateObject(ObjectID)
    case memoryTrim(trimmed: Bool)
    case createStream
    case openStream
    /// The writer's new chunk; `fd` as in ``createBuffer(_:fd:)``.
    case nextStreamChunk(IPCPayload, fd: Int32)
    case pushStreamChunk
    case pullStreamChunk(ObjectID)
    case stopStream
    case dropStream
    /// A reply relayed as another vineyard server sent it (a volume socket relaying to vineyardd): its frame,
    /// and the descriptors that came with it, received into this process. They are the
    /// reply's own: the server closes them once they are sent (or cannot be).
    case forwarded(JSONValue, descriptors: [Int32])

    public static func == (lhs: IPCReply, rhs: IPCReply) -> Bool { lhs.json == rhs.json }
    public func hash(into hasher: inout Hasher) { hasher.combine(json) }

    /// The descriptors that must follow the frame, in order.
    public var descriptors: [Int32] {
        switch self {
        case .createBuffer(_, let fd), .nextStreamChunk(_, let fd): return fd >= 0 ? [fd] : []
        case .createBuffers(_, let fds), .getBuffers(_, let fds), .forwarded(_, let fds): return fds
        default: return []
        }
    }

    /// The reply frame's JSON.
    public var json: JSONValue {
        func id(_ id: ObjectID) -> JSONValue { JSONValue(integer: id.rawValue) }
        func fds(_ fds: [Int32]) -> JSONValue { .array(fds.map { JSONValue(integer: Int($0)) }) }
        func indexed(_ payloads: [IPCPayload], into members: inout [String: JSONValue]) {
            members["num"] = JSONValue(integer: payloads.count)
            for (index, payload) in payloads.enumerated() { members[String(index)] = payload.json }
        }
        var members: [String: JSONValue] = [:]
        let type: String
        switch self {
        case .register(let info, let sessionID, let storeMatch):
            type = "register_reply"
            members["instance_id"] = JSONValue(integer: info.instanceID)
            members["ipc_socket"] = .string(info.ipcSocket)
            members["rpc_endpoint"] = .string(info.rpcEndpoint)
            members["session_id"] = .int(sessionID)
            members["version"] = .string(info.version)
            members["store_match"] = .bool(storeMatch)
            members["support_rpc_compression"] = false
        case .createBuffer(let payload, let fd):
            type = "create_buffer_reply"
            members["id"] = id(payload.objectID)
            members["created"] = payload.json
            members["fd"] = JSONValue(integer: Int(fd))
        case .createBuffers(let payloads, let sent):
            type = "create_buffers_reply"
            indexed(payloads, into: &members)
            members["ids"] = .array(payloads.map { id($0.objectID) })
            members["fds"] = fds(sent)
        case .seal: type = "seal_reply"
        case .getBuffers(let payloads, let sent):
            type = "get_buffers_reply"
            indexed(payloads, into: &members)
            members["payloads"] = .array(payloads.map(\.json))
            members["fds"] = fds(sent)
            members["compress"] = false
        case .dropBuffer: type = "drop_buffer_reply"
        case .shrinkBuffer: type = "shrink_buffer_reply"
        case .createData(let object, let signature, let instanceID):
            type = "create_data_reply"
            members["id"] = id(object)
            members["signature"] = JSONValue(integer: signature)
            members["instance_id"] = JSONValue(integer: instanceID)
        case .getData(let trees):
            type = "get_data_reply"
            // vineyardd answers `null` rather than `{}` when nothing was found.
            members["content"] =
                trees.isEmpty
                ? .null : .object(Dictionary(uniqueKeysWithValues: trees.map { ($0.key.description, $0.value) }))
        case .delData(let deleted):
            if let deleted {
                type = "del_data_with_feedbacks_reply"
                members["deleted_bids"] = .array(deleted.map(id))
            } else {
                type = "del_data_reply"
            }
        case .exists(let exists):
            type = "exists_reply"
            members["exists"] = .bool(exists)
        case .persist: type = "persist_reply"
        case .ifPersist(let persistent):
            type = "if_persist_reply"
            members["persist"] = .bool(persistent)
        case .putName: type = "put_name_reply"
        case .getName(let object):
            type = "get_name_reply"
            members["object_id"] = id(object)
        case .dropName: type = "drop_name_reply"
        case .listName(let names):
            type = "list_name_reply"
            members["names"] = .object(Dictionary(names.map { ($0.name, id($0.id)) }, uniquingKeysWith: { a, _ in a }))
            members["size"] = JSONValue(integer: names.count)
        case .release: type = "release_reply"
        case .increaseReferenceCount: type = "increase_reference_count_reply"
        case .clusterMeta(let meta):
            type = "cluster_meta"
            members["meta"] = meta
        case .instanceStatus(let meta):
            type = "instance_status_reply"
            members["meta"] = meta
        case .clear: type = "clear_reply"
        case .migrateObject(let object):
            type = "migrate_object_reply"
            members["object_id"] = id(object)
        case .memoryTrim(let trimmed):
            type = "memory_trim_reply"
            members["trimmed"] = .bool(trimmed)
        case .createStream: type = "create_stream_reply"
        case .openStream: type = "open_stream_reply"
        case .nextStreamChunk(let payload, let fd):
            type = "get_next_stream_chunk_reply"
            members["buffer"] = payload.json
            members["fd"] = JSONValue(integer: Int(fd))
        case .pushStreamChunk: type = "push_next_stream_chunk_reply"
        case .pullStreamChunk(let chunk):
            type = "pull_next_stream_chunk_reply"
            members["chunk"] = id(chunk)
        case .stopStream: type = "stop_stream_reply"
        case .dropStream: type = "drop_stream_reply"
        case .forwarded(let json, _): return json
        }
        members["type"] = .string(type)
        return .object(members)
    }
}
