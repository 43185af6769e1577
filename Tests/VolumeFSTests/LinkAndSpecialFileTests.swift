//
// vineyard-csi: VolumeFSTests
//
// LinkAndSpecialFileTests.swift: hard links, FIFOs, sockets and device nodes in the store.

import FUSEKit
import Glibc
import SharedMemoryStore
import Testing

import VolumeFS

@Suite("Links and special files", .serialized)
struct LinkAndSpecialFileTests {
    /// Device 4:7 in Linux's `dev_t` encoding (`makedev` is a macro Swift does not import).
    static let device: dev_t = (4 << 8) | 7

    @Test("hard links and special files survive a remount and a reopened store; a snapshot keeps the old version")
    func durability() throws {
        let store = try TestStore()
        defer { store.tearDown() }
        let payload = Array("linked bytes".utf8)
        do {
            let mount = try TestMount(store: store.store, volumeID: "links")
            defer { mount.tearDown() }
            #expect(Sys.mkdir(mount.url("dir")) == 0)
            try Sys.writeFile(mount.url("a"), payload)
            #expect(Glibc.link(mount.url("a"), mount.url("dir/b")) == 0)
            #expect(mkfifo(mount.url("fifo"), 0o640) == 0)
            #expect(mknod(mount.url("char"), S_IFCHR | 0o600, Self.device) == 0)
        }
        func check(_ label: String) throws {
            let mount = try TestMount(store: store.store, volumeID: "links")
            defer { mount.tearDown() }
            let a = try Sys.status(mount.url("a"))
            let b = try Sys.status(mount.url("dir/b"))
            #expect(a.st_nlink == 2 && b.st_nlink == 2, "\(label)")
            #expect(a.st_ino == b.st_ino, "\(label)")
            #expect(try Sys.readFile(mount.url("dir/b")) == payload, "\(label)")
            let fifo = try Sys.linkStatus(mount.url("fifo"))
            #expect(fifo.st_mode == S_IFIFO | 0o640, "\(label)")
            let device = try Sys.linkStatus(mount.url("char"))
            #expect(device.st_mode == S_IFCHR | 0o600 && device.st_rdev == Self.device, "\(label)")
        }
        try check("remount")
        try store.reopen()
        try check("reopened store")
        // Bytes counted once, files once per object.
        #expect(
            VolumeFileSystem.usage(store: store.store, volumeID: "links")
                == VolumeUsage(bytes: payload.count, files: 3, directories: 1))

        // A snapshot (names copied under another prefix) keeps the version it copied, and its
        // names do not count as links of the volume.
        try store.store.copyNames(withPrefix: "links/", to: "snap/")
        let mount = try TestMount(store: store.store, volumeID: "links")
        defer { mount.tearDown() }
        try Sys.writeFile(mount.url("dir/b"), [9])
        #expect(try Sys.readFile(mount.url("a")) == [9])
        #expect(try Sys.status(mount.url("a")).st_nlink == 2)
        let snapshotID = try #require(store.store.name("snap/a"))
        #expect(store.store.name("snap/dir/b") == snapshotID)
        #expect(store.store.object(snapshotID).map { Array($0.bytes) } == payload)
        #expect(store.store.name("links/a") == store.store.name("links/dir/b"))
        #expect(store.store.name("links/a") != snapshotID)
    }

    @Test("the last name removed frees the object; an inode moves to the name left")
    func lastName() throws {
        try withVolume { store, mount in
            try Sys.writeFile(mount.url("one"), [1, 2, 3])
            #expect(Glibc.link(mount.url("one"), mount.url("two")) == 0)
            let id = try #require(store.store.name("vol-1/one"))
            let fd = Sys.open(mount.url("one"), O_RDONLY)
            try #require(fd >= 0)
            defer { close(fd) }
            #expect(Sys.unlink(mount.url("one")) == 0)
            // The descriptor's inode now stands for "two".
            var st = stat()
            #expect(fstat(fd, &st) == 0 && st.st_nlink == 1)
            #expect(store.store.exists(id))
            #expect(Sys.unlink(mount.url("two")) == 0)
            #expect(fstat(fd, &st) == 0 && st.st_nlink == 0)
            #expect(try Sys.preadAll(fd, count: 3, at: 0) == [1, 2, 3])
            #expect(VolumeFileSystem.usage(store: store.store, volumeID: "vol-1") == VolumeUsage(bytes: 0, files: 0, directories: 0))
        }
    }

    @Test("two FUSE mounts of one volume: links made in one are links in the other; a version written through one name shows through every name")
    func twoMounts() throws {
        try withVolumes(["vol", "vol"]) { store, mounts in
            let (first, second) = (mounts[0], mounts[1])
            try Sys.writeFile(first.url("a"), [1])
            _ = try Sys.status(second.url("a"))  // cached in the second mount
            #expect(Glibc.link(first.url("a"), first.url("b")) == 0)
            #expect(Glibc.link(second.url("a"), second.url("c")) == 0)
            #expect(try Sys.status(first.url("c")).st_nlink == 3)
            try Sys.writeFile(second.url("c"), [2, 2])
            usleep(1_100_000)  // the first mount's kernel may keep the old size for the attribute timeout
            for mount in [first, second] {
                for name in ["a", "b", "c"] { #expect(try Sys.readFile(mount.url(name)) == [2, 2], "\(mount.path) \(name)") }
            }
            let ids = Set(["a", "b", "c"].compactMap { store.store.name("vol/\($0)") })
            #expect(ids.count == 1)
            #expect(Sys.unlink(second.url("a")) == 0)
            #expect(Sys.unlink(first.url("b")) == 0)
            #expect(try Sys.readFile(first.url("c")) == [2, 2])
            #expect(VolumeFileSystem.usage(store: store.store, volumeID: "vol") == VolumeUsage(bytes: 2, files: 1, directories: 0))
            #expect(Sys.unlink(first.url("c")) == 0)
            #expect(store.store.names(withPrefix: "vol/").map(\.0) == ["vol/"])
        }
    }
}
