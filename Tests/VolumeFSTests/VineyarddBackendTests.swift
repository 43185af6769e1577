// vineyard-csi: VolumeFSTests
// VineyarddBackendTests.swift: a volume's file system over a real vineyardd, called directly, and
// purge through the backend seam on both backends.

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import StoreBackend
import Testing
import VineyarddTestSupport
import VolumeFS

@Suite("vineyardd file system and purge", .serialized)
struct VineyarddBackendTests {
    let context = RequestContext(uid: 0, gid: 0, pid: 4242)

    @Test(
        "lookup counts: inodes the kernel forgets leave the table, and a later lookup gets a new number",
        .enabled(if: VineyarddProcess.available, "vineyardd not installed"))
    func forgetting() throws {
        let server = try VineyarddProcess()
        defer { server.stop() }
        let connection = VineyarddConnection(socketPath: server.socket)
        defer { connection.close() }
        let fs = try VolumeFileSystem(
            backend: VineyarddBackend(connection: connection), volumeID: "forget", quotaBytes: 0, readOnly: false)
        let created = try fs.create(
            parent: .root, name: "a", mode: 0o644, flags: OpenFlags(rawValue: O_WRONLY | O_CREAT), context: context)
        let inode = created.entry.attributes.inode
        try fs.flush(inode: inode, handle: created.open.handle, lockOwner: 0, context: context)
        fs.release(inode: inode, handle: created.open.handle, flags: OpenFlags(rawValue: O_WRONLY))
        let directory = try fs.makeDirectory(parent: .root, name: "d", mode: 0o755, context: context)
        #expect(fs.inodeCount == 3)

        let looked = try fs.lookup(parent: .root, name: "a", context: context)
        #expect(looked.attributes.inode == inode)
        fs.forget(inode: inode, lookups: 2)  // create's and lookup's
        #expect(fs.inodeCount == 2)
        #expect(throws: Errno.noEntry) { try fs.getAttributes(inode: inode, handle: nil, context: context) }
        let again = try fs.lookup(parent: .root, name: "a", context: context)
        #expect(again.attributes.inode != inode)

        // A renamed directory keeps its inode; its children's paths follow it.
        let child = try fs.create(
            parent: directory.attributes.inode, name: "b", mode: 0o644, flags: OpenFlags(rawValue: O_WRONLY | O_CREAT),
            context: context)
        try fs.flush(inode: child.entry.attributes.inode, handle: child.open.handle, lockOwner: 0, context: context)
        fs.release(inode: child.entry.attributes.inode, handle: child.open.handle, flags: OpenFlags(rawValue: O_WRONLY))
        try fs.rename(parent: .root, name: "d", newParent: .root, newName: "e", flags: [], context: context)
        #expect(try fs.lookup(parent: .root, name: "e", context: context).attributes.inode == directory.attributes.inode)
        #expect(try fs.getAttributes(inode: child.entry.attributes.inode, handle: nil, context: context).attributes.size == 0)

        // An unlinked file's inode is gone from its directory: ENOENT, and forgetting it empties the table.
        try fs.unlink(parent: .root, name: "a", context: context)
        #expect(throws: Errno.noEntry) { try fs.getAttributes(inode: again.attributes.inode, handle: nil, context: context) }
        fs.forget(inode: again.attributes.inode, lookups: 1)
        fs.forget(inode: child.entry.attributes.inode, lookups: 1)
        fs.forget(inode: directory.attributes.inode, lookups: 2)
        #expect(fs.inodeCount == 1)
    }

    @Test("named contents count each object once; purge removes a volume's names and objects and leaves other volumes alone, on both backends")
    func purge() throws {
        var backends: [(any ObjectBackend, () -> Void)] = []
        let store = try TestStore(capacity: 16 << 20)
        backends.append((EmbeddedBackend(store: store.store), { store.tearDown() }))
        if VineyarddProcess.available {
            let server = try VineyarddProcess()
            let backend = VineyarddBackend(socketPath: server.socket)
            backends.append((backend, { backend.connection.close(); server.stop() }))
        }
        defer { for (_, tearDown) in backends { tearDown() } }
        for (backend, _) in backends {
            var meta = ObjectMeta(typename: "test::File", nbytes: 100, instanceID: 0, isTransient: false)
            meta.fields[VolumeFileSystem.ownerMetadataKey] = "p"
            let purged = try backend.createObject(meta, name: "p/a")
            try backend.bind("p/d/b", to: try backend.createObject(meta, name: nil))
            try backend.bind("p/c", to: purged)
            let kept = try backend.createObject(meta, name: "q/a")
            // Every name counts; an object bound to two names counts its bytes once.
            let contents = try VolumeFileSystem.namedContents(backend: backend, volumeID: "p")
            #expect(contents.names == 3)
            #expect(contents.bytes == 200)
            try VolumeFileSystem.purge(backend: backend, volumeID: "p")
            #expect(try VolumeFileSystem.namedContents(backend: backend, volumeID: "p").names == 0)
            #expect(try backend.names(withPrefix: "p/", limit: nil).isEmpty)
            #expect(try backend.meta(purged) == nil)
            #expect(try backend.lookUp("q/a") == kept)
            #expect(try backend.meta(kept) != nil)
        }
    }
}
