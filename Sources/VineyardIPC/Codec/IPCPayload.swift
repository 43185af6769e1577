// vineyard-csi: VineyardIPC
// IPCPayload.swift: where a blob's bytes are, as vineyard tells a client to map them.

import VineyardObjects

/// A blob's location in a shared-memory file: the client maps `mapSize - 8` bytes of the file
/// it received for `storeFD` (once per connection) and finds the blob at `dataOffset`.
///
/// `storeFD` is the *server's* descriptor number; the client uses it only as the key of its
/// per-connection cache of received descriptors. An empty blob has `storeFD` -1 and is never
/// mapped.
public struct IPCPayload: Hashable, Sendable {
    public var objectID: ObjectID
    public var storeFD: Int32
    public var dataOffset: Int
    public var dataSize: Int
    public var mapSize: Int
    /// The server's address of the bytes; meaningless to clients, which ignore it.
    public var pointer: UInt64
    public var isSealed: Bool
    public var isOwner: Bool

    public init(
        objectID: ObjectID, storeFD: Int32, dataOffset: Int, dataSize: Int, mapSize: Int, pointer: UInt64 = 0,
        isSealed: Bool, isOwner: Bool = true
    ) {
        self.objectID = objectID
        self.storeFD = storeFD
        self.dataOffset = dataOffset
        self.dataSize = dataSize
        self.mapSize = mapSize
        self.pointer = pointer
        self.isSealed = isSealed
        self.isOwner = isOwner
    }

    /// The payload vineyard uses for zero-length buffers: the empty blob, nothing to map.
    public static let empty = IPCPayload(
        objectID: .emptyBlob, storeFD: -1, dataOffset: 0, dataSize: 0, mapSize: 0, isSealed: true)

    /// Whether the client must have the store file mapped to use this payload.
    public var needsMapping: Bool { dataSize > 0 && storeFD >= 0 }

    public var json: JSONValue {
        [
            "object_id": JSONValue(integer: objectID.rawValue),
            "store_fd": JSONValue(integer: Int(storeFD)),
            "data_offset": JSONValue(integer: dataOffset),
            "data_size": JSONValue(integer: dataSize),
            "map_size": JSONValue(integer: mapSize),
            "pointer": JSONValue(integer: pointer),
            "is_sealed": .bool(isSealed),
            "is_owner": .bool(isOwner),
            "is_gpu": false,
        ]
    }

    /// Reads a payload; the booleans default as the C++ client's do.
    ///
    /// - Throws: ``IPCError`` when one of the six required numbers is missing.
    public init(json: JSONValue) throws(IPCError) {
        func number(_ key: String) throws(IPCError) -> Int64 {
            guard let value = json[key]?.int64Value else {
                if let big = json[key]?.uint64Value { return Int64(bitPattern: big) }
                throw IPCError(.invalid, "payload: \"\(key)\" must be an integer")
            }
            return value
        }
        guard let object = json["object_id"]?.uint64Value else {
            throw IPCError(.invalid, "payload: \"object_id\" must be an unsigned integer")
        }
        self.objectID = ObjectID(object)
        self.storeFD = Int32(truncatingIfNeeded: try number("store_fd"))
        self.dataOffset = Int(try number("data_offset"))
        self.dataSize = Int(try number("data_size"))
        self.mapSize = Int(try number("map_size"))
        self.pointer = UInt64(bitPattern: try number("pointer"))
        self.isSealed = json["is_sealed"]?.boolValue ?? false
        self.isOwner = json["is_owner"]?.boolValue ?? true
    }
}
