//
// vineyard-csi: VolumeFSTests
//
// The public API without a mount: construction, usage, purge, mount options, and the
// FileSystem methods called directly (runs without /dev/fuse).

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import StoreBackend
import Testing
import VolumeFS

@Suite("API")
struct APITests {
    let context = RequestContext(uid: 1000, gid: 2000, pid: 4242)

    @Test("invalid volume IDs and quotas are refused; the root is created once")
    func construction() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        for bad in ["", "a/b", ".", "..", "nul\u{0}", String(repeating: "x", count: 1025)] {
            #expect(throws: VolumeFSError.self) {
                _ = try VolumeFileSystem(store: store.store, volumeID: bad, quotaBytes: 0, readOnly: false)
            }
        }
        do {
            _ = try VolumeFileSystem(store: store.store, volumeID: "v", quotaBytes: -1, readOnly: false)
            Issue.record("a negative quota was accepted")
        } catch {
            #expect(error.code == .invalidQuota)
        }
        // Read-only does not create anything.
        _ = try VolumeFileSystem(store: store.store, volumeID: "ro", quotaBytes: 0, readOnly: true)
        #expect(store.store.name("ro/") == nil)
        let first = try VolumeFileSystem(store: store.store, volumeID: "v", quotaBytes: 0, readOnly: false)
        let root = try #require(store.store.name("v/"))
        _ = try VolumeFileSystem(store: store.store, volumeID: "v", quotaBytes: 0, readOnly: false)
        #expect(store.store.name("v/") == root)
        let meta = try #require(store.store.meta(root))
        #expect(meta.typename == "vineyard-csi::Directory")
        #expect(meta.fields["posix_mode"] == JSONValue(integer: 0o777))
        _ = first
    }

    @Test("recommended mount options")
    func mountOptions() {
        let options = VolumeFileSystem.recommendedMountOptions(volumeID: "pvc-1", readOnly: false)
        #expect(options.fsName == "vineyard:pvc-1")
        #expect(options.subtype == "vineyard")
        #expect(options.allowOther && options.defaultPermissions && !options.readOnly)
        #expect(options.maxWrite == 1 << 20)
        #expect(options.capabilities.contains(.atomicOpenTruncate))
        #expect(!options.capabilities.contains(.writebackCache))
        #expect(options.mountOptionStrings.contains("rw"))
        let readOnly = VolumeFileSystem.recommendedMountOptions(volumeID: "pvc-1", readOnly: true)
        #expect(readOnly.readOnly && readOnly.mountOptionStrings.contains("ro"))
    }

    /// Creates `name` in the root with `bytes`, through the FileSystem methods.
    func createFile(_ fs: VolumeFileSystem, _ name: String, _ bytes: [UInt8]) throws -> InodeNumber {
        let created = try fs.create(
            parent: .root, name: name, mode: 0o644, flags: OpenFlags(rawValue: O_WRONLY | O_CREAT), context: context)
        let handle = created.open.handle
        let written = try bytes.withUnsafeBytes { buffer throws(Errno) in
            try fs.write(
                inode: created.entry.attributes.inode, handle: handle, offset: 0, data: buffer, context: context)
        }
        #expect(written == bytes.count)
        try fs.flush(inode: created.entry.attributes.inode, handle: handle, lockOwner: 0, context: context)
        fs.release(inode: created.entry.attributes.inode, handle: handle, flags: OpenFlags(rawValue: O_WRONLY))
        return created.entry.attributes.inode
    }

    func readAll(_ fs: VolumeFileSystem, _ inode: InodeNumber) throws -> [UInt8] {
        let open = try fs.open(inode: inode, flags: OpenFlags(rawValue: O_RDONLY), context: context)
        defer { fs.release(inode: inode, handle: open.handle, flags: OpenFlags(rawValue: O_RDONLY)) }
        switch try fs.read(inode: inode, handle: open.handle, offset: 0, size: 1 << 24, context: context) {
        case .buffer(let bytes, _): return Array(bytes)
        case .buffers(let pieces, _): return pieces.flatMap { Array($0) }
        case .bytes(let bytes): return bytes
        case .fileDescriptor: return []
        }
    }

    @Test("FileSystem calls: create, write, publish at flush, read zero-copy, rename, unlink, lookup counts")
    func directCalls() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        let fs = try VolumeFileSystem(store: store.store, volumeID: "direct", quotaBytes: 0, readOnly: false)
        let inode = try createFile(fs, "a.txt", Array("alpha".utf8))
        #expect(store.store.name("direct/a.txt") != nil)
        let attributes = try fs.getAttributes(inode: inode, handle: nil, context: context).attributes
        #expect(attributes.size == 5)
        #expect(attributes.uid == 1000 && attributes.gid == 2000)
        #expect(attributes.mode == S_IFREG | 0o644)
        #expect(try readAll(fs, inode) == Array("alpha".utf8))
        let open = try fs.open(inode: inode, flags: OpenFlags(rawValue: O_RDONLY), context: context)
        if case .buffer(_, let keepAlive) = try fs.read(
            inode: inode, handle: open.handle, offset: 1, size: 2, context: context)
        {
            #expect(keepAlive is ObjectHandle, "reads must reply from the store's memory")
        } else {
            Issue.record("expected a zero-copy buffer reply")
        }
        fs.release(inode: inode, handle: open.handle, flags: OpenFlags(rawValue: O_RDONLY))

        // Lookups add to the count; forget removes the inode from the table.
        let looked = try fs.lookup(parent: .root, name: "a.txt", context: context)
        #expect(looked.attributes.inode == inode)
        #expect(fs.inodeCount == 2)
        fs.forget(inode: inode, lookups: 2)
        #expect(fs.inodeCount == 1)
        let again = try fs.lookup(parent: .root, name: "a.txt", context: context)
        #expect(again.attributes.inode != inode)  // numbers are never reused
        #expect(throws: Errno.noEntry) { try fs.lookup(parent: .root, name: "missing", context: context) }
        #expect(throws: Errno.nameTooLong) {
            try fs.lookup(parent: .root, name: String(repeating: "x", count: 256), context: context)
        }
        #expect(throws: Errno.invalid) { try fs.lookup(parent: .root, name: "a/b", context: context) }

        // mkdir, rename into it, rmdir refuses, unlink, rmdir.
        let directory = try fs.makeDirectory(parent: .root, name: "d", mode: 0o755, context: context)
        try fs.rename(
            parent: .root, name: "a.txt", newParent: directory.attributes.inode, newName: "b.txt", flags: [],
            context: context)
        #expect(store.store.name("direct/d/b.txt") != nil)
        #expect(throws: Errno.notEmpty) { try fs.removeDirectory(parent: .root, name: "d", context: context) }
        #expect(throws: Errno.invalid) {
            try fs.rename(
                parent: directory.attributes.inode, name: "b.txt", newParent: .root, newName: "c", flags: .exchange,
                context: context)
        }
        try fs.unlink(parent: directory.attributes.inode, name: "b.txt", context: context)
        try fs.removeDirectory(parent: .root, name: "d", context: context)
        #expect(store.store.names(withPrefix: "direct/").map(\.0) == ["direct/"])
        #expect(fs.usage == VolumeUsage(bytes: 0, files: 0, directories: 0))
        let stats = try fs.statistics(inode: .root, context: context)
        #expect(stats.blocks * stats.fragmentSize == UInt64(store.store.usage.capacity))
    }

    @Test("usage counts incrementally and by scanning; purge deletes every object of the volume only")
    func usageAndPurge() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        do {
            let fs = try VolumeFileSystem(store: store.store, volumeID: "p", quotaBytes: 0, readOnly: false)
            _ = try fs.makeDirectory(parent: .root, name: "d", mode: 0o755, context: context)
            _ = try createFile(fs, "one", [UInt8](repeating: 1, count: 1000))
            _ = try createFile(fs, "two", [UInt8](repeating: 2, count: 2000))
            _ = try createFile(fs, "one", [UInt8](repeating: 3, count: 500))  // O_CREAT on an existing file
            let expected = VolumeUsage(bytes: 2000 + 1000, files: 2, directories: 1)
            // createFile("one") reopened the existing file without O_TRUNC and wrote 500 bytes
            // over the first 1000.
            #expect(fs.usage == expected)
            #expect(VolumeFileSystem.usage(store: store.store, volumeID: "p") == expected)
            let other = try VolumeFileSystem(store: store.store, volumeID: "other", quotaBytes: 0, readOnly: false)
            _ = try createFile(other, "keep", [9])
        }
        // No file system alive: a scan.
        #expect(
            VolumeFileSystem.usage(store: store.store, volumeID: "p")
                == VolumeUsage(bytes: 3000, files: 2, directories: 1))
        // An orphan (a sealed version whose name was never bound, as after a crash).
        let writer = try store.store.createBlob(expectedSize: 10)
        try writer.append([1, 2, 3])
        var meta = ObjectMeta.blob(size: 3)
        meta.fields["vcsi_volume"] = "p"
        let orphan = try store.store.seal(writer, meta: meta)

        try VolumeFileSystem.purge(backend: EmbeddedBackend(store: store.store), volumeID: "p")
        #expect(store.store.names(withPrefix: "p/").isEmpty)
        #expect(!store.store.isSealed(orphan))
        #expect(
            VolumeFileSystem.usage(store: store.store, volumeID: "p") == VolumeUsage(bytes: 0, files: 0, directories: 0)
        )
        #expect(store.store.name("other/keep") != nil)
        #expect(throws: VolumeFSError.self) { try VolumeFileSystem.purge(backend: EmbeddedBackend(store: store.store), volumeID: "a/b") }
    }

    @Test("a read-only file system refuses every change with EROFS")
    func readOnly() throws {
        let store = try TestStore(capacity: 16 << 20)
        defer { store.tearDown() }
        let fs = try VolumeFileSystem(store: store.store, volumeID: "r", quotaBytes: 0, readOnly: true)
        #expect(throws: Errno.readOnlyFileSystem) {
            try fs.create(parent: .root, name: "x", mode: 0o644, flags: OpenFlags(rawValue: O_WRONLY), context: context)
        }
        #expect(throws: Errno.readOnlyFileSystem) {
            try fs.makeDirectory(parent: .root, name: "x", mode: 0o755, context: context)
        }
        #expect(throws: Errno.readOnlyFileSystem) {
            try fs.setAttributes(inode: .root, SetAttributes(mode: 0o700), handle: nil, context: context)
        }
        #expect(throws: Errno.readOnlyFileSystem) { try fs.unlink(parent: .root, name: "x", context: context) }
        #expect(throws: Errno.readOnlyFileSystem) {
            try fs.rename(parent: .root, name: "x", newParent: .root, newName: "y", flags: [], context: context)
        }
        // Reads of the (marker-less) root work.
        let root = try fs.getAttributes(inode: .root, handle: nil, context: context).attributes
        #expect(root.mode == S_IFDIR | 0o777)
    }
}
