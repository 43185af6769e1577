//
// vineyard-csi: VolumeFSTests
//
// Names through real mounts: directories, listings, renames, attributes, isolation, limits
// of names, and the kernel's lookup counts.

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Synchronization
import Testing
import VolumeFS

@Suite("Namespace", .serialized, .enabled(if: TestEnvironment.canMount, "needs /dev/fuse and root"))
struct NamespaceTests {
    @Test("mkdir, rmdir, ENOTEMPTY, ENOTDIR, EISDIR, EEXIST; directories are markers in the store")
    func directories() throws {
        try withVolume { store, mount in
            #expect(Sys.mkdir(mount.url("a"), 0o750) == 0)
            #expect(Sys.mkdir(mount.url("a")) == EEXIST)
            #expect(store.store.name("vol-1/a/") != nil)
            #expect(Sys.mkdir(mount.url("a/b")) == 0)
            #expect(Sys.rmdir(mount.url("a")) == ENOTEMPTY)
            #expect(Sys.rmdir(mount.url("a/b")) == 0)
            #expect(Sys.rmdir(mount.url("a/b")) == ENOENT)
            #expect(store.store.name("vol-1/a/b/") == nil)
            let a = try Sys.status(mount.url("a"))
            #expect(a.st_mode == S_IFDIR | 0o750)
            #expect(a.st_nlink == 2)

            try Sys.writeFile(mount.url("a/file"), [1, 2, 3])
            #expect(Sys.rmdir(mount.url("a")) == ENOTEMPTY)
            #expect(Sys.rmdir(mount.url("a/file")) == ENOTDIR)
            #expect(Sys.unlink(mount.url("a")) == EISDIR)
            #expect(Sys.mkdir(mount.url("a/file")) == EEXIST)
            #expect(Sys.open(mount.url("a/file"), O_WRONLY | O_CREAT | O_EXCL) == -EEXIST)
            #expect(Sys.open(mount.url("a/file/x"), O_RDONLY) == -ENOTDIR)
            #expect(Sys.open(mount.url("missing"), O_RDONLY) == -ENOENT)
            #expect(Sys.unlink(mount.url("a/file")) == 0)
            #expect(Sys.unlink(mount.url("a/file")) == ENOENT)
            #expect(store.store.name("vol-1/a/file") == nil)

            // A directory being written into is not empty, even before anything is in the store.
            let fd = Sys.open(mount.url("a/pending"), O_WRONLY | O_CREAT)
            try #require(fd >= 0)
            #expect(Sys.rmdir(mount.url("a")) == ENOTEMPTY)
            close(fd)
            #expect(Sys.unlink(mount.url("a/pending")) == 0)
            #expect(Sys.rmdir(mount.url("a")) == 0)
            #expect(try Sys.listDirectory(mount.path) == [])

            // A hard link is a second name of the same object; a new version moves both names.
            try Sys.writeFile(mount.url("linked"), [1])
            #expect(Glibc.link(mount.url("linked"), mount.url("hard")) == 0)
            #expect(store.store.name("vol-1/linked") == store.store.name("vol-1/hard"))
            #expect(try Sys.status(mount.url("linked")).st_nlink == 2)
            try Sys.writeFile(mount.url("hard"), [2, 3])
            #expect(store.store.name("vol-1/linked") == store.store.name("vol-1/hard"))
            #expect(try Sys.readFile(mount.url("linked")) == [2, 3])
            #expect(try Sys.status(mount.url("linked")).st_ino == Sys.status(mount.url("hard")).st_ino)
            #expect(Sys.unlink(mount.url("hard")) == 0)
            #expect(try Sys.status(mount.url("linked")).st_nlink == 1)
            #expect(try Sys.readFile(mount.url("linked")) == [2, 3])
            // fsync succeeds.
            let synced = Sys.open(mount.url("linked"), O_WRONLY)
            try #require(synced >= 0)
            #expect(fsync(synced) == 0 && fdatasync(synced) == 0)
            #expect(close(synced) == 0)
            #expect(Sys.unlink(mount.url("linked")) == 0)

            // A new volume's root: mode 0777, owned by root.
            let root = try Sys.status(mount.path)
            #expect(root.st_mode == S_IFDIR | 0o777)
            #expect(root.st_uid == 0 && root.st_gid == 0)
        }
    }

    @Test("rename: plain, over an existing file, RENAME_NOREPLACE, RENAME_EXCHANGE, directories with subtrees")
    func renames() throws {
        try withVolume { store, mount in
            try Sys.writeFile(mount.url("one"), Array("one".utf8))
            try Sys.writeFile(mount.url("two"), Array("two".utf8))
            let oneID = try #require(store.store.name("vol-1/one"))
            let twoID = try #require(store.store.name("vol-1/two"))
            #expect(Sys.rename(mount.url("one"), mount.url("uno")) == 0)
            #expect(Sys.statErrno(mount.url("one")) == ENOENT)
            #expect(try Sys.readFile(mount.url("uno")) == Array("one".utf8))
            #expect(store.store.name("vol-1/uno") == oneID)  // the object moved, no copy

            // Over an existing file: atomic, and the replaced object is deleted.
            #expect(Sys.rename(mount.url("uno"), mount.url("two")) == 0)
            #expect(try Sys.readFile(mount.url("two")) == Array("one".utf8))
            #expect(!store.store.isSealed(twoID))
            #expect(Sys.statErrno(mount.url("uno")) == ENOENT)

            try Sys.writeFile(mount.url("three"), Array("three".utf8))
            #expect(Sys.rename(mount.url("three"), mount.url("two"), flags: Sys.renameNoReplace) == EEXIST)
            #expect(Sys.rename(mount.url("three"), mount.url("four"), flags: Sys.renameNoReplace) == 0)
            #expect(Sys.rename(mount.url("four"), mount.url("two"), flags: Sys.renameExchange) == EINVAL)
            #expect(Sys.rename(mount.url("missing"), mount.url("x")) == ENOENT)

            // rsync-style: write a temporary file, rename it into place, from another process.
            let python = try Sys.run(
                "/usr/bin/python3",
                [
                    "-c",
                    "import os,sys; p=sys.argv[1]; f=open(p+'/.tmp.x','wb'); f.write(b'fresh'*1000); f.close(); "
                        + "os.replace(p+'/.tmp.x', p+'/two')",
                    mount.path,
                ])
            #expect(python.status == 0, "\(python.errorText)")
            #expect(try Sys.readFile(mount.url("two")) == Array(String(repeating: "fresh", count: 1000).utf8))
            #expect(Set(try Sys.listDirectory(mount.path)) == ["two", "four"])

            // Directories move with their subtree (markers, files, and files still being written).
            #expect(Sys.mkdir(mount.url("d1")) == 0)
            #expect(Sys.mkdir(mount.url("d1/sub")) == 0)
            try Sys.writeFile(mount.url("d1/sub/leaf"), [7, 7, 7])
            try Sys.writeFile(mount.url("d1/top"), [1])
            let pending = Sys.open(mount.url("d1/sub/pending"), O_WRONLY | O_CREAT)
            try #require(pending >= 0)
            try Sys.pwriteAll(pending, [9, 9][...], at: 0)
            #expect(Sys.mkdir(mount.url("d2")) == 0)
            #expect(Sys.rename(mount.url("d1"), mount.url("d2/moved")) == 0)
            #expect(close(pending) == 0)
            #expect(Sys.statErrno(mount.url("d1")) == ENOENT)
            #expect(try Sys.readFile(mount.url("d2/moved/sub/leaf")) == [7, 7, 7])
            #expect(try Sys.readFile(mount.url("d2/moved/top")) == [1])
            #expect(try Sys.readFile(mount.url("d2/moved/sub/pending")) == [9, 9])
            #expect(store.store.names(withPrefix: "vol-1/d1/").isEmpty)
            #expect(store.store.name("vol-1/d2/moved/sub/pending") != nil)

            // Into itself, over a non-empty directory, over an empty one, file over directory.
            #expect(Sys.rename(mount.url("d2"), mount.url("d2/moved/inside")) == EINVAL)
            #expect(Sys.mkdir(mount.url("d3")) == 0)
            #expect(Sys.rename(mount.url("d3"), mount.url("d2")) == ENOTEMPTY)
            #expect(Sys.mkdir(mount.url("empty")) == 0)
            #expect(Sys.rename(mount.url("d3"), mount.url("empty")) == 0)
            #expect(Sys.statErrno(mount.url("d3")) == ENOENT)
            #expect(Sys.rename(mount.url("two"), mount.url("empty")) == EISDIR)
            #expect(Sys.rename(mount.url("empty"), mount.url("two")) == ENOTDIR)
            #expect(VolumeFileSystem.usage(store: store.store, volumeID: "vol-1").directories == 4)
        }
    }

    @Test("readdir of 10,000 entries is complete, without duplicates, and stable while the directory changes")
    func largeDirectory() throws {
        try withVolume { store, mount in
            let count = 10_000
            #expect(Sys.mkdir(mount.url("big")) == 0)
            var expected = Set<String>()
            for index in 0..<count {
                let name = "entry-\(index)-" + String(repeating: "x", count: index % 50)
                expected.insert(name)
                let fd = Sys.open(mount.url("big/\(name)"), O_WRONLY | O_CREAT | O_EXCL)
                try #require(fd >= 0, "create \(name): \(Errno(rawValue: -fd))")
                close(fd)
            }
            let listed = try Sys.listDirectory(mount.url("big"))
            #expect(listed.count == count)
            #expect(Set(listed) == expected)

            let ls = try Sys.run("/bin/ls", ["-1", "-a", mount.url("big")])
            let lines = ls.text.split(separator: "\n").map(String.init)
            #expect(lines.count == count + 2)
            #expect(Set(lines) == expected.union([".", ".."]))
            // ls -l stats every entry (readdirplus).
            let long = try Sys.run("/bin/ls", ["-l", mount.url("big")])
            #expect(long.status == 0)
            #expect(long.text.split(separator: "\n").count == count + 1)

            // Change the directory half-way through a listing: entries present throughout
            // come exactly once, nothing comes twice.
            guard let directory = opendir(mount.url("big")) else { throw Errno.current }
            var seen: [String] = []
            while seen.count < 3000, let entry = readdir(directory) {
                seen.append(Sys.entryName(entry))
            }
            let sorted = expected.sorted()
            let removed = Set(sorted.prefix(100) + sorted.suffix(100))
            for name in removed { #expect(Sys.unlink(mount.url("big/\(name)")) == 0) }
            for index in 0..<100 {
                let fd = Sys.open(mount.url("big/added-\(index)"), O_WRONLY | O_CREAT)
                if fd >= 0 { close(fd) }
            }
            while let entry = readdir(directory) { seen.append(Sys.entryName(entry)) }
            closedir(directory)
            let names = seen.filter { $0 != "." && $0 != ".." }
            #expect(names.count == Set(names).count, "duplicates in a listing")
            #expect(expected.subtracting(removed).isSubset(of: Set(names)))
            #expect(Set(names).isSubset(of: expected.union((0..<100).map { "added-\($0)" })))
            waitForPublication(store.store)
            #expect(store.store.names(withPrefix: "vol-1/big/").count == count - 200 + 100 + 1)
        }
    }

    @Test("chmod, chown, truncate and utimens persist across a remount; chmod does not copy the data")
    func attributes() throws {
        let store = try TestStore()
        defer { store.tearDown() }
        let times = [
            timespec(tv_sec: 1_000_000_123, tv_nsec: 456_000_000),
            timespec(tv_sec: 2_000_000_000, tv_nsec: 789),
        ]
        do {
            let mount = try TestMount(store: store.store, volumeID: "attrs")
            defer { mount.tearDown() }
            let path = mount.url("file")
            try Sys.writeFile(path, [UInt8](repeating: 0xAB, count: 1000))
            let before = try #require(store.store.name("attrs/file"))
            #expect(chmod(path, 0o640) == 0)
            #expect(chown(path, 1234, 5678) == 0)
            #expect(store.store.name("attrs/file") == before, "chmod/chown made a new object")
            #expect(try Sys.status(path).st_mode == S_IFREG | 0o640)

            #expect(truncate(path, 10) == 0)
            #expect(try Sys.readFile(path) == [UInt8](repeating: 0xAB, count: 10))
            #expect(truncate(path, 100) == 0)
            #expect(try Sys.readFile(path) == [UInt8](repeating: 0xAB, count: 10) + [UInt8](repeating: 0, count: 90))
            let fd = Sys.open(path, O_RDWR)
            try #require(fd >= 0)
            #expect(ftruncate(fd, 50) == 0)
            var st = Glibc.stat()
            #expect(fstat(fd, &st) == 0)
            #expect(st.st_size == 50)
            #expect(close(fd) == 0)

            var stamps = times
            #expect(utimensat(AT_FDCWD, path, &stamps, 0) == 0)
            #expect(Sys.mkdir(mount.url("dir"), 0o700) == 0)
            #expect(chown(mount.url("dir"), 42, 43) == 0)
            #expect(chmod(mount.url("dir"), 0o2755) == 0)
            // A set-group-ID directory passes its group on.
            try Sys.writeFile(mount.url("dir/child"), [1])
            #expect(try Sys.status(mount.url("dir/child")).st_gid == 43)
            #expect(symlink("file", mount.url("link")) == 0)
        }
        let mount = try TestMount(store: store.store, volumeID: "attrs")
        defer { mount.tearDown() }
        let st = try Sys.status(mount.url("file"))
        #expect(st.st_mode == S_IFREG | 0o640)
        #expect(st.st_uid == 1234 && st.st_gid == 5678)
        #expect(st.st_size == 50)
        #expect(st.st_atim.tv_sec == times[0].tv_sec && st.st_atim.tv_nsec == times[0].tv_nsec)
        #expect(st.st_mtim.tv_sec == times[1].tv_sec && st.st_mtim.tv_nsec == times[1].tv_nsec)
        let dir = try Sys.status(mount.url("dir"))
        #expect(dir.st_mode == S_IFDIR | 0o2755)
        #expect(dir.st_uid == 42 && dir.st_gid == 43)
        #expect(try Sys.linkStatus(mount.url("link")).st_mode & S_IFMT == S_IFLNK)
        #expect(
            try Sys.readFile(mount.url("link")) == [UInt8](repeating: 0xAB, count: 10)
                + [UInt8](repeating: 0, count: 40))
    }

    @Test("volumes sharing a store never see each other's files, even when one ID prefixes the other")
    func isolation() throws {
        try withVolumes(["vol", "vol-2"]) { store, mounts in
            try Sys.writeFile(mounts[0].url("only-in-vol"), [1])
            try Sys.writeFile(mounts[1].url("only-in-vol-2"), [2])
            #expect(Sys.mkdir(mounts[1].url("dir")) == 0)
            #expect(try Sys.listDirectory(mounts[0].path) == ["only-in-vol"])
            #expect(Set(try Sys.listDirectory(mounts[1].path)) == ["only-in-vol-2", "dir"])
            #expect(Sys.statErrno(mounts[0].url("only-in-vol-2")) == ENOENT)
            #expect(Sys.statErrno(mounts[0].url("dir")) == ENOENT)
            #expect(store.store.names(withPrefix: "vol/").map(\.0).sorted() == ["vol/", "vol/only-in-vol"])
            #expect(
                VolumeFileSystem.usage(store: store.store, volumeID: "vol")
                    == VolumeUsage(bytes: 1, files: 1, directories: 0))
            #expect(
                VolumeFileSystem.usage(store: store.store, volumeID: "vol-2")
                    == VolumeUsage(bytes: 1, files: 1, directories: 1))
        }
    }

    @Test("names up to 255 bytes and paths up to PATH_MAX work below the longest volume ID; longer ones fail with ENAMETOOLONG")
    func longNames() throws {
        let volumeID = String(repeating: "v", count: 1000)
        try withVolumes([volumeID]) { _, mounts in
            let mount = mounts[0]
            let long = String(repeating: "n", count: 256)
            #expect(Sys.open(mount.url(long), O_WRONLY | O_CREAT) == -ENAMETOOLONG)
            #expect(Sys.mkdir(mount.url(long)) == ENAMETOOLONG)
            #expect(Sys.statErrno(mount.url(long)) == ENAMETOOLONG)
            let longest = String(repeating: "n", count: 255)
            try Sys.writeFile(mount.url(longest), [1])
            #expect(try Sys.readFile(mount.url(longest)) == [1])

            // Nested 255-byte directories until the kernel's PATH_MAX (4,096 with the NUL)
            // refuses the absolute path: the store's names ("<volumeID>/" is 1001 bytes more)
            // never limit it first.
            let mountPrefix = mount.url("").utf8.count
            var path = ""
            var failure: Int32 = 0
            let component = String(repeating: "d", count: 255)
            while failure == 0 {
                path += (path.isEmpty ? "" : "/") + component
                failure = Sys.mkdir(mount.url(path))
            }
            #expect(failure == ENAMETOOLONG)
            #expect(mountPrefix + path.utf8.count >= 4096)
            let deepest = String(path.utf8.dropLast(256))!
            #expect(mountPrefix + deepest.utf8.count < 4096)
            #expect(Sys.statErrno(mount.url(deepest)) == 0)
        }
    }

    @Test("concurrent creates, writes, reads, renames, unlinks and listings in one directory")
    func concurrency() throws {
        try withVolume { store, mount in
            #expect(Sys.mkdir(mount.url("shared")) == 0)
            let failures = Mutex<[String]>([])
            let workers = 4
            let rounds = 150
            DispatchQueue.concurrentPerform(iterations: workers + 1) { worker in
                func fail(_ message: String) { failures.withLock { $0.append("worker \(worker): \(message)") } }
                if worker == workers {
                    // A lister racing with everyone else.
                    for _ in 0..<40 {
                        guard let names = try? Sys.listDirectory(mount.url("shared")) else { return fail("list") }
                        if names.count != Set(names).count { fail("duplicate names in a listing") }
                    }
                    return
                }
                var random = SeededGenerator(seed: UInt64(worker) + 100)
                for round in 0..<rounds {
                    let name = mount.url("shared/w\(worker)-\(round)")
                    let data = Sys.randomBytes(Int.random(in: 0...70_000, using: &random), using: &random)
                    do {
                        try Sys.writeFile(name + ".tmp", data)
                        guard Sys.rename(name + ".tmp", name) == 0 else { return fail("rename \(round)") }
                        if let mismatch = mismatch(try Sys.readFile(name), data) { fail("read \(round): \(mismatch)") }
                        if round % 3 == 0 && Sys.unlink(name) != 0 { fail("unlink \(round)") }
                    } catch {
                        fail("round \(round): \(error)")
                    }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let expected = workers * (rounds - (rounds + 2) / 3)
            let listed = try Sys.listDirectory(mount.url("shared"))
            #expect(listed.count == expected)
            waitForPublication(store.store)
            #expect(store.store.names(withPrefix: "vol-1/shared/").count == expected + 1)
            #expect(store.store.usage.unsealedCount == 0)
        }
    }

    @Test("names removed, replaced or re-created through another mount, while this kernel caches them")
    func staleEntries() throws {
        try withVolumes(["vol", "vol"]) { _, mounts in
            let (a, b) = (mounts[0], mounts[1])
            try Sys.writeFile(a.url("gone"), [1])
            try Sys.writeFile(a.url("again"), [1])
            #expect(Sys.mkdir(a.url("dir")) == 0)
            try Sys.writeFile(a.url("dir/inner"), [1])
            for name in ["gone", "again", "dir", "dir/inner"] { _ = try Sys.status(a.url(name)) }  // cached in a

            #expect(Sys.unlink(b.url("gone")) == 0)
            #expect(Sys.unlink(b.url("again")) == 0)
            #expect(Sys.unlink(b.url("dir/inner")) == 0)
            #expect(Sys.rmdir(b.url("dir")) == 0)
            usleep(1_100_000)  // a's cached attributes expire; its cached names do not yet

            #expect(Sys.statErrno(a.url("gone")) == ENOENT)
            #expect(Sys.open(a.url("gone"), O_RDONLY) == -ENOENT)
            // O_CREAT over a name a still caches creates the file.
            let fd = Sys.open(a.url("again"), O_WRONLY | O_CREAT)
            try #require(fd >= 0, "open(O_CREAT): \(Errno(rawValue: -fd))")
            try Sys.pwriteAll(fd, [2, 2][...], at: 0)
            #expect(close(fd) == 0)
            #expect(try Sys.readFile(b.url("again")) == [2, 2])
            #expect(Sys.statErrno(a.url("dir")) == ENOENT)
            #expect(Sys.mkdir(a.url("dir")) == 0)
            #expect(try Sys.listDirectory(a.url("dir")) == [])

            // Replaced by a directory elsewhere.
            try Sys.writeFile(a.url("shape"), [1])
            _ = try Sys.status(a.url("shape"))
            #expect(Sys.unlink(b.url("shape")) == 0)
            #expect(Sys.mkdir(b.url("shape")) == 0)
            usleep(1_100_000)
            #expect(try Sys.status(a.url("shape")).st_mode & S_IFMT == S_IFDIR)
        }
    }

    @Test("lookup counts: inodes the kernel forgets leave the table")
    func forgetting() throws {
        try withVolume { _, mount in
            for index in 0..<200 { try Sys.writeFile(mount.url("f\(index)"), [UInt8(index % 256)]) }
            for index in 0..<200 { _ = try Sys.status(mount.url("f\(index)")) }
            let fileSystem = try #require(mount.fileSystem)
            #expect(fileSystem.inodeCount > 200)
            let fd = open("/proc/sys/vm/drop_caches", O_WRONLY)
            guard fd >= 0 else {
                print("skipping the forget check: /proc/sys/vm/drop_caches is not writable")
                return
            }
            _ = write(fd, "2", 1)
            close(fd)
            var count = fileSystem.inodeCount
            for _ in 0..<100 where count > 10 {
                usleep(20_000)
                count = fileSystem.inodeCount
            }
            #expect(count <= 10, "inodes still in the table after the kernel dropped its caches: \(count)")
            // Everything is still there, under new inode numbers.
            for index in 0..<200 { #expect(try Sys.readFile(mount.url("f\(index)")) == [UInt8(index % 256)]) }
        }
    }
}
