// vineyard-csi: VineyardIPC
// VineyardClient+Files.swift: a file's bytes as a named, persisted vineyard object.

import Glibc
public import VineyardObjects

/// A file stored in a vineyardd, as found by name.
public struct VineyardFile: Sendable {
    /// One blob of the file's bytes, in order.
    public struct Chunk: Sendable, Hashable {
        public var blob: ObjectID
        /// Bytes of the blob that belong to the file (a chunk's blob may be larger).
        public var length: Int
        /// The instance whose shared memory holds the blob.
        public var instanceID: UInt64

        public init(blob: ObjectID, length: Int, instanceID: UInt64) {
            self.blob = blob
            self.length = length
            self.instanceID = instanceID
        }
    }

    /// The object the name refers to.
    public var object: ObjectID
    /// The file's length: the sum of the chunks' lengths.
    public var size: Int
    public var chunks: [Chunk]
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
            fill(created.mutableBytes)
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
        let object: ObjectID
        do throws(VineyardClientError) {
            guard let found = try self.object(named: name) else { return nil }
            object = found
        } catch {
            throw .client(error)
        }
        return try file(object, name: name)
    }

    /// Reads object `id` as a file; `nil` when it is gone. `name` is for errors.
    public func file(_ id: ObjectID, name: String) throws(VineyardFileError) -> VineyardFile? {
        let meta: JSONValue
        do throws(VineyardClientError) {
            guard let found = try self.meta(id) else { return nil }
            meta = found
        } catch {
            throw .client(error)
        }
        return try file(meta: meta, name: name)
    }

    /// Reads a file's metadata tree as a file. `name` is for errors.
    public func file(meta: JSONValue, name: String) throws(VineyardFileError) -> VineyardFile {
        let typename = meta["typename"]?.stringValue ?? "?"
        guard let object = meta["id"]?.stringValue.flatMap(ObjectID.init) else { throw .notAFile(name: name, typename: typename) }
        let fallbackInstance = meta["instance_id"]?.uint64Value ?? server.instanceID
        func chunk(_ member: JSONValue?, length: Int) -> VineyardFile.Chunk? {
            guard let member, let blob = member["id"]?.stringValue.flatMap(ObjectID.init) else { return nil }
            return VineyardFile.Chunk(blob: blob, length: length, instanceID: member["instance_id"]?.uint64Value ?? fallbackInstance)
        }
        if typename == Self.chunkedFileTypeName {
            let lengths = Self.lengths(meta["chunk_lengths_"]?.stringValue ?? "")
            var chunks: [VineyardFile.Chunk] = []
            for (index, length) in lengths.enumerated() {
                guard let found = chunk(meta["chunk_\(index)"], length: length) else { throw .notAFile(name: name, typename: typename) }
                chunks.append(found)
            }
            return VineyardFile(object: object, size: lengths.reduce(0, +), chunks: chunks)
        }
        // A byte tensor (written by ``writeFile(named:size:fill:)`` or by vineyard's Python
        // client from a uint8 array): one blob.
        guard typename.hasPrefix("vineyard::Tensor<"), let buffer = chunk(meta["buffer_"], length: Int(meta["nbytes"]?.int64Value ?? 0))
        else {
            throw .notAFile(name: name, typename: typename)
        }
        return VineyardFile(object: object, size: buffer.length, chunks: buffer.length > 0 ? [buffer] : [])
    }

    /// Publishes a file made of sealed blobs (``chunkedFileTypeName``): creates the object,
    /// persists it and names it, replacing what the name referred to.
    ///
    /// - Parameter fields: further metadata fields (the owning volume's stamp).
    /// - Returns: the new object.
    @discardableResult
    public func publishFile(
        named name: String, chunks: [VineyardFile.Chunk], fields: [String: JSONValue] = [:]
    ) throws(VineyardClientError) -> ObjectID {
        let instance = JSONValue(integer: server.instanceID)
        var tree: [String: JSONValue] = [
            "typename": .string(Self.chunkedFileTypeName),
            "instance_id": instance,
            "nbytes": JSONValue(integer: chunks.reduce(0) { $0 + $1.length }),
            "transient": true,
            "global": false,
            "chunk_lengths_": .string("[" + chunks.map { String($0.length) }.joined(separator: ", ") + "]"),
        ]
        tree.merge(fields) { _, new in new }
        for (index, chunk) in chunks.enumerated() {
            tree["chunk_\(index)"] = [
                "id": .string(chunk.blob.description), "instance_id": JSONValue(integer: chunk.instanceID),
                "length": JSONValue(integer: chunk.length), "nbytes": JSONValue(integer: chunk.length),
                "transient": true, "typename": "vineyard::Blob",
            ]
        }
        let object = try createData(.object(tree))
        try persist(object)
        try putName(name, object)
        return object
    }

    /// The typename of files written through a mount: their bytes in several blobs (a writer
    /// does not know the final size when it starts, and vineyard blobs have a fixed size).
    public static let chunkedFileTypeName = "vineyard-csi::File"

    /// Parses `"[1, 2, 3]"`.
    private static func lengths(_ text: String) -> [Int] {
        text.split(whereSeparator: { $0 == "[" || $0 == "]" || $0 == "," || $0 == " " }).compactMap { Int($0) }
    }

    /// A file's chunks, mapped from vineyardd's shared memory (no copy), in order.
    ///
    /// - Throws: ``VineyardFileError/remote(name:instanceID:localInstanceID:)`` when another
    ///   instance holds the bytes.
    public func buffers(of file: VineyardFile, name: String) throws(VineyardFileError) -> [MappedBuffer] {
        if let foreign = file.chunks.first(where: { $0.instanceID != server.instanceID }) {
            throw .remote(name: name, instanceID: foreign.instanceID, localInstanceID: server.instanceID)
        }
        guard !file.chunks.isEmpty else { return [] }
        do throws(VineyardClientError) {
            let mapped = try buffers(file.chunks.map(\.blob))
            return try file.chunks.map { (chunk) throws(VineyardClientError) in
                guard let buffer = mapped[chunk.blob], buffer.bytes.count >= chunk.length else {
                    throw .refused(IPCError(.objectNotExists, "blob \(chunk.blob) of \(name) is gone"))
                }
                return MappedBuffer(id: buffer.id, start: buffer.mutableBytes.baseAddress, count: chunk.length, owner: buffer.owner)
            }
        } catch {
            throw .client(error)
        }
    }
}
