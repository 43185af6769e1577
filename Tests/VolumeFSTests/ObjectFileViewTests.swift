//
// vineyard-csi: VolumeFSTests
//
// Vineyard objects put through the socket, read as .npy files through the FileSystem API.

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Testing
import VolumeFS

@Suite("Object files")
struct ObjectFileViewTests {
    let context = RequestContext(uid: 0, gid: 0, pid: 1)

    /// Puts a blob and returns its metadata member, as vineyard's client embeds it.
    func blob(_ store: ObjectStore, _ bytes: [UInt8]) throws -> ObjectMeta {
        let writer = try store.createBlob(expectedSize: bytes.count)
        try writer.append(bytes)
        let id = try store.seal(writer)
        return ObjectMeta(typename: "vineyard::Blob", nbytes: bytes.count, fields: ["length": JSONValue(integer: bytes.count)], id: id)
    }

    func tensor(_ buffer: ObjectMeta, shape: String, descr: String) -> ObjectMeta {
        ObjectMeta(
            typename: "vineyard::Tensor<x>", nbytes: buffer.nbytes, isTransient: false,
            fields: ["shape_": .string(shape), "value_type_meta_": .string(descr), "order_": "\"C\""],
            members: ["buffer_": buffer])
    }

    /// The whole file at `name`, read in `chunk`-byte requests, and its reported size.
    func read(_ fs: VolumeFileSystem, _ name: String, chunk: Int) throws -> ([UInt8], UInt64) {
        let entry = try fs.lookup(parent: .root, name: name, context: context)
        let inode = entry.attributes.inode
        let open = try fs.open(inode: inode, flags: OpenFlags(rawValue: O_RDONLY), context: context)
        defer { fs.release(inode: inode, handle: open.handle, flags: OpenFlags(rawValue: O_RDONLY)) }
        var bytes: [UInt8] = []
        while true {
            let part: [UInt8]
            switch try fs.read(inode: inode, handle: open.handle, offset: Int64(bytes.count), size: chunk, context: context) {
            case .buffer(let buffer, _): part = Array(buffer)
            case .buffers(let pieces, _): part = pieces.flatMap { Array($0) }
            case .bytes(let copied): part = copied
            case .fileDescriptor: part = []
            }
            if part.isEmpty { break }
            bytes += part
        }
        return (bytes, entry.attributes.size)
    }

    @Test("a tensor reads as an .npy file: 64-byte aligned header, then the blob's bytes")
    func tensorFile() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        let data = (0..<(6 * 8)).map { UInt8($0) }
        let id = try store.store.createObject(tensor(try blob(store.store, data), shape: "[2, 3]", descr: "<f8"))
        try store.store.putName("vol/arr", id)
        let fs = try VolumeFileSystem(store: store.store, volumeID: "vol", quotaBytes: 0, readOnly: false)
        for chunk in [7, 64, 4096] {
            let (bytes, size) = try read(fs, "arr", chunk: chunk)
            #expect(Int(size) == bytes.count)
            #expect(Array(bytes.prefix(8)) == [0x93] + Array("NUMPY".utf8) + [1, 0])
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            #expect((10 + headerLength) % 64 == 0)
            let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
            #expect(header.hasPrefix("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"))
            #expect(header.hasSuffix("\n"))
            #expect(Array(bytes[(10 + headerLength)...]) == data)
        }
    }

    @Test("a data frame reads as a structured .npy file with rows interleaved from the columns")
    func frameFile() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        let a: [Int64] = [1, 2, 3]
        let b: [Int8] = [-1, -2, -3]
        let columnA = tensor(try blob(store.store, a.withUnsafeBytes { Array($0) }), shape: "[3]", descr: "<i8")
        let columnB = tensor(try blob(store.store, b.withUnsafeBytes { Array($0) }), shape: "[3]", descr: "|i1")
        let frame = ObjectMeta(
            typename: "vineyard::DataFrame", isTransient: false,
            fields: ["__values_-size": 2, "__values_-key-0": "\"a\"", "__values_-key-1": "\"it's\"", "columns_": "[\"a\", \"it's\"]"],
            members: [
                "__values_-value-0": try #require(store.store.meta(try store.store.createObject(columnA))),
                "__values_-value-1": try #require(store.store.meta(try store.store.createObject(columnB))),
            ])
        try store.store.putName("vol/df", try store.store.createObject(frame))
        let fs = try VolumeFileSystem(store: store.store, volumeID: "vol", quotaBytes: 0, readOnly: false)
        let (bytes, size) = try read(fs, "df", chunk: 5)
        #expect(Int(size) == bytes.count)
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': [('a', '<i8'), ('it\\'s', '|i1')], 'fortran_order': False, 'shape': (3,), }"))
        var expected: [UInt8] = []
        for row in 0..<3 {
            expected += withUnsafeBytes(of: a[row]) { Array($0) }
            expected += withUnsafeBytes(of: b[row]) { Array($0) }
        }
        #expect(Array(bytes[(10 + headerLength)...]) == expected)
    }

    @Test("objects without a file view stay empty; the socket placeholder is an empty file")
    func otherObjects() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        let scalar = ObjectMeta(typename: "vineyard::Scalar<int>", isTransient: false, fields: ["value_": 4])
        try store.store.putName("vol/s", try store.store.createObject(scalar))
        let bad = tensor(try blob(store.store, [1, 2]), shape: "[2, 3]", descr: "|O")
        try store.store.putName("vol/bad", try store.store.createObject(bad))
        try VolumeFileSystem.ensureSocketPlaceholder(store: store.store, volumeID: "vol")
        try VolumeFileSystem.ensureSocketPlaceholder(store: store.store, volumeID: "vol")
        let fs = try VolumeFileSystem(store: store.store, volumeID: "vol", quotaBytes: 0, readOnly: false)
        for name in ["s", "bad", VolumeFileSystem.socketFileName] {
            let (bytes, size) = try read(fs, name, chunk: 4096)
            #expect(bytes.isEmpty && size == 0, "\(name)")
        }
        #expect(fs.usage.files == 3)
    }
}
