// vineyard-csi: StoreBackendTests
// FileContractTests.swift: files over the backend seam (versions, publishing, reading, listings, renames), on the embedded store and a real vineyardd.

import SharedMemoryStore
import StoreBackend
import POSIXCore
import Testing

@Suite("ObjectBackend files", .serialized)
struct FileContractTests {
    /// The bytes of a read, whatever form the backend answered in.
    func bytes(_ file: any SealedFile, at offset: Int = 0, count: Int = 1 << 30) throws -> [UInt8] {
        switch try file.read(at: offset, count: count) {
        case .copied(let copied): return copied
        case .mapped(let pieces, let keepAlive):
            defer { withExtendedLifetime(keepAlive) {} }
            return pieces.flatMap { Array($0) }
        }
    }

    func fileMeta(_ size: Int) -> ObjectMeta {
        var meta = ObjectMeta.blob(size: size)
        meta.isTransient = false
        meta.fields["vcsi_volume"] = "v"
        return meta
    }

    @Test("a version starts from a copy of the old one, is published under its name, and readers keep the version they opened", arguments: BackendUnderTest.available)
    func versions(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        let first = try backend.startVersion(from: nil, keeping: 0)
        try first.write(at: 0, Array("hello world".utf8))
        try first.write(at: 14, Array("!".utf8))  // a hole reads as zeros
        #expect(first.size == 15)
        #expect(try first.read(at: 9, count: 10) == Array("ld".utf8) + [0, 0, 0] + Array("!".utf8))
        let published = try backend.publish(first, meta: fileMeta(first.size), name: "v/f")
        #expect(published.replaced == nil)
        #expect(try backend.lookUp("v/f") == published.id)
        let meta = try #require(try backend.meta(published.id))
        #expect(backend.fileSize(of: published.id, meta: meta) == 15)
        #expect(meta.fields["vcsi_volume"]?.stringValue == "v")

        let reader = try #require(try backend.openFile(published.id))
        #expect(reader.size == 15)
        #expect(try bytes(reader) == Array("hello world".utf8) + [0, 0, 0] + Array("!".utf8))
        #expect(try bytes(reader, at: 6, count: 5) == Array("world".utf8))

        // The next version: a copy of the first 11 bytes, changed in the middle and grown.
        let second = try backend.startVersion(from: reader, keeping: 11)
        #expect(second.size == 11)
        try second.write(at: 0, Array("J".utf8))
        try second.truncate(to: 13)
        let republished = try backend.publish(second, meta: fileMeta(second.size), name: "v/f")
        #expect(republished.replaced == published.id)
        #expect(try backend.lookUp("v/f") == republished.id)
        let current = try #require(try backend.openFile(republished.id))
        #expect(try bytes(current) == Array("Jello world".utf8) + [0, 0])
        // The reader of the first version still reads it: its memory waits for it.
        #expect(try bytes(reader) == Array("hello world".utf8) + [0, 0, 0] + Array("!".utf8))

        // A discarded version leaves the name as it was.
        let dropped = try backend.startVersion(from: current, keeping: current.size)
        try dropped.write(at: 0, Array("X".utf8))
        dropped.discard()
        #expect(try backend.lookUp("v/f") == republished.id)
        #expect(try bytes(try #require(try backend.openFile(republished.id))) == Array("Jello world".utf8) + [0, 0])
    }

    @Test("listings group names below a directory once, in name order, page by page; renames move a name and say what it replaced", arguments: BackendUnderTest.available)
    func listingsAndRenames(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        let marker = ObjectMeta(typename: "test::Marker", instanceID: 0, isTransient: false)
        for name in ["v/", "v/a", "v/b/", "v/b/x", "v/b/y", "v/c", "w/z"] {
            _ = try backend.createObject(marker, name: name)
        }
        let all = try backend.listDirectory("v/", after: nil, limit: 100)
        #expect(all.map(\.name) == ["", "a", "b", "c"], "the directory's own marker lists as \"\"")
        #expect(all.contains(.directory(name: "b")))
        let page = try backend.listDirectory("v/", after: nil, limit: 2)
        #expect(page.count == 2)
        let rest = try backend.listDirectory("v/", after: page.last, limit: 100)
        #expect(page + rest == all)

        let a = try #require(try backend.lookUp("v/a"))
        let c = try #require(try backend.lookUp("v/c"))
        #expect(try backend.renameName(from: "v/a", to: "v/c") == c)
        #expect(try backend.lookUp("v/a") == nil)
        #expect(try backend.lookUp("v/c") == a)
        do {
            _ = try backend.renameName(from: "v/a", to: "v/d")
            Issue.record("renaming a missing name succeeded")
        } catch {
            #expect(error.errno == .noEntry)
        }
    }
}

extension FileContractTests {
    @Test("metadata edits stick under the file's name and leave its bytes alone", arguments: BackendUnderTest.available)
    func metadataEdits(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        let version = try backend.startVersion(from: nil, keeping: 0)
        try version.write(at: 0, Array("kept".utf8))
        let published = try backend.publish(version, meta: fileMeta(4), name: "v/m")
        let reader = try #require(try backend.openFile(published.id))
        try backend.updateMeta(published.id, name: "v/m") { $0.fields["posix_mode"] = 0o600 }
        let id = try #require(try backend.lookUp("v/m"))
        let meta = try #require(try backend.meta(id))
        #expect(meta.fields["posix_mode"]?.int64Value == 0o600)
        #expect(meta.fields["vcsi_volume"]?.stringValue == "v")
        #expect(backend.fileSize(of: id, meta: meta) == 4)
        #expect(try bytes(try #require(try backend.openFile(id))) == Array("kept".utf8))
        #expect(try bytes(reader) == Array("kept".utf8))
        // A directory marker's too.
        let marker = try backend.createObject(ObjectMeta(typename: "test::Marker", instanceID: 0, isTransient: false), name: "v/d/")
        try backend.updateMeta(marker, name: "v/d/") { $0.fields["posix_uid"] = 7 }
        #expect(try backend.meta(try #require(try backend.lookUp("v/d/")))?.fields["posix_uid"]?.int64Value == 7)
    }
}
