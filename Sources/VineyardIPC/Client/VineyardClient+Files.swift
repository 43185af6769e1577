// vineyard-csi: VineyardIPC
// VineyardClient+Files.swift: a file's bytes as a named, persisted vineyard object.

import Glibc
public import SharedMemoryStore

/// A file stored in a vineyardd, as found by name.
public struct VineyardFile: Sendable {
    /// The `vineyard::Tensor<uint8>` object the name refers to.
    public var object: ObjectID
    /// Its one blob.
    public var blob: ObjectID
    /// The instance whose shared memory holds the blob.
    public var instanceID: UInt64
    /// The file's length.
    public var size: Int
}

/// Why a named file cannot be read through this client.
public enum VineyardFileError: Error, Sendable, CustomStringConvertible {
    case client(VineyardClientError)
    /// The name refers to an object that is not a one-dimensional byte tensor.
    case notAFile(name: String, typename: String)
    /// The bytes live in another vineyardd's memory. Reading them needs that instance's RPC
    /// endpoint (vineyard's migration), which this client does not speak.
    case remote(name: String, instanceID: UInt64, localInstanceID: UInt64)

    public var description: String {
        switch self {
        case .client(let error): return "\(error)"
        case .notAFile(let name, let typename): return "\(name) is a \(typename), not a file"
        case .remote(let name, let instance, let local):
            return "\(name) is held by vineyard instance \(instance), not this node's instance \(local); "
                + "reading it needs vineyard's RPC migration, which the driver does not perform"
        }
    }
}

extension VineyardClient {
    /// The typename of files: a byte tensor, so vineyard's Python client reads a file as a
    /// `numpy.uint8` array (`client.get(name=...)`), and files written by it with
    /// `client.put(np.frombuffer(data, np.uint8), persist=True, name=...)` read as files.
    public static let fileTypeName = "vineyard::Tensor<uint8>"

    /// Writes a file: one blob in vineyardd's shared memory (`fill` writes straight into it,
    /// the only copy), sealed, wrapped in a byte tensor, persisted and named. A failure before
    /// the name is put leaves no name behind: readers see the previous version or nothing.
    ///
    /// - Returns: the new object.
    @discardableResult
    public func writeFile(
        named name: String, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(VineyardClientError) -> ObjectID {
        let blob: ObjectID
        if size > 0 {
            let created = try createBuffer(size: size)
            fill(created.bytes)
            do {
                try seal(created.id)
            } catch {
                try? dropBuffer(created.id)
                throw error
            }
            blob = created.id
        } else {
            blob = .emptyBlob
        }
        let instance = JSONValue(integer: server.instanceID)
        let tree: JSONValue = [
            "typename": .string(Self.fileTypeName),
            "instance_id": instance,
            "nbytes": JSONValue(integer: size),
            "transient": true,
            "global": false,
            "shape_": .string("[\(size)]"),
            "order_": "\"C\"",
            "partition_index_": "[]",
            "value_type_": "uint8",
            "value_type_meta_": "|u1",
            "buffer_": [
                "id": .string(blob.description), "instance_id": instance, "length": JSONValue(integer: size),
                "nbytes": JSONValue(integer: size), "transient": true, "typename": "vineyard::Blob",
            ],
        ]
        let object = try createData(tree)
        try persist(object)
        try putName(name, object)
        return object
    }

    /// Finds a file by name; `nil` when the name is unknown.
    public func file(named name: String) throws(VineyardFileError) -> VineyardFile? {
        let meta: JSONValue
        do throws(VineyardClientError) {
            guard let object = try object(named: name) else { return nil }
            guard let found = try self.meta(object) else { return nil }
            meta = found
        } catch {
            throw .client(error)
        }
        let typename = meta["typename"]?.stringValue ?? "?"
        guard typename.hasPrefix("vineyard::Tensor<"), let buffer = meta["buffer_"],
            let blob = buffer["id"]?.stringValue.flatMap(ObjectID.init), let object = meta["id"]?.stringValue.flatMap(ObjectID.init)
        else {
            throw .notAFile(name: name, typename: typename)
        }
        let instance = buffer["instance_id"]?.uint64Value ?? meta["instance_id"]?.uint64Value ?? server.instanceID
        let size = Int(meta["nbytes"]?.int64Value ?? 0)
        return VineyardFile(object: object, blob: blob, instanceID: instance, size: size)
    }

    /// A file's bytes, mapped from vineyardd's shared memory (no copy); valid until ``close()``.
    ///
    /// - Throws: ``VineyardFileError/remote(name:instanceID:localInstanceID:)`` when another
    ///   instance holds the bytes.
    public func bytes(of file: VineyardFile, name: String) throws(VineyardFileError) -> UnsafeRawBufferPointer {
        guard file.size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard file.instanceID == server.instanceID else {
            throw .remote(name: name, instanceID: file.instanceID, localInstanceID: server.instanceID)
        }
        do throws(VineyardClientError) {
            guard let bytes = try buffers([file.blob])[file.blob] else {
                throw VineyardClientError.refused(IPCError(.objectNotExists, "blob \(file.blob) of \(name) is gone"))
            }
            return UnsafeRawBufferPointer(rebasing: bytes.prefix(file.size))
        } catch {
            throw .client(error)
        }
    }
}
