//
// vineyard-csi: FUSEKitTests
//
// Real mounts of the in-memory test file system, driven with POSIX calls from this process
// and with /bin/cat and /bin/ls from child processes.

import Foundation
@testable import FUSEKit
import Glibc
import Synchronization
import Testing

@Suite("Mounted file system", .serialized, .enabled(if: TestEnvironment.canMount, "needs /dev/fuse and root"))
struct MountTests {
    // MARK: - Data paths

    /// Writes >1 MiB with random offsets and sizes, reads it back at random offsets, whole, from
    /// several threads, and through `cat`.
    func roundTrip(readPath: InMemoryFileSystem.ReadPath, seed: UInt64) throws {
        let fileSystem = InMemoryFileSystem(readPath: readPath)
        try withMount(fileSystem: fileSystem) { mount in
            var random = SeededGenerator(seed: seed)
            let size = 3 << 20 + 12345
            var expected = [UInt8](repeating: 0, count: size)
            let path = mount.url("data.bin")

            let fd = POSIX.open(path, O_RDWR | O_CREAT | O_EXCL, 0o644)
            try #require(fd >= 0, "open: \(Errno(rawValue: -fd))")
            // One sequential pass so the whole file is defined, then random overwrites.
            let initial = POSIX.randomBytes(size, using: &random)
            try POSIX.pwriteAll(fd, initial[...], at: 0)
            expected = initial
            for _ in 0..<200 {
                let length = Int.random(in: 1...(300 << 10), using: &random)
                let offset = Int.random(in: 0...(size - length), using: &random)
                let chunk = POSIX.randomBytes(length, using: &random)
                try POSIX.pwriteAll(fd, chunk[...], at: offset)
                expected.replaceSubrange(offset..<(offset + length), with: chunk)
            }
            // Extend past the end with a hole in between.
            let tail = POSIX.randomBytes(4096, using: &random)
            try POSIX.pwriteAll(fd, tail[...], at: size + 100_000)
            expected += [UInt8](repeating: 0, count: 100_000) + tail
            #expect(close(fd) == 0)

            let st = try POSIX.status(path)
            #expect(Int(st.st_size) == expected.count)
            #expect(st.st_mode & S_IFMT == S_IFREG)

            // Random reads through a fresh descriptor (open without keep_cache drops the cache).
            let reader = POSIX.open(path, O_RDONLY)
            try #require(reader >= 0)
            defer { close(reader) }
            for _ in 0..<200 {
                let length = Int.random(in: 1...(700 << 10), using: &random)
                let offset = Int.random(in: 0...(expected.count - 1), using: &random)
                let got = try POSIX.preadAll(reader, count: length, at: offset)
                let end = min(offset + length, expected.count)
                #expect(got == Array(expected[offset..<end]), "read \(length) at \(offset)")
            }
            #expect(try POSIX.readFile(path) == expected)

            // Concurrent readers in this process.
            let mismatches = Atomic<Int>(0)
            let reference = expected
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                var local = SeededGenerator(seed: seed &+ UInt64(worker))
                let fd = POSIX.open(path, O_RDONLY)
                guard fd >= 0 else {
                    mismatches.add(1, ordering: .relaxed)
                    return
                }
                defer { close(fd) }
                for _ in 0..<50 {
                    let length = Int.random(in: 1...(256 << 10), using: &local)
                    let offset = Int.random(in: 0...(reference.count - 1), using: &local)
                    let got = (try? POSIX.preadAll(fd, count: length, at: offset)) ?? []
                    if got != Array(reference[offset..<min(offset + length, reference.count)]) {
                        mismatches.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(mismatches.load(ordering: .relaxed) == 0)

            // Another process.
            let cat = try POSIX.run("/bin/cat", [path])
            #expect(cat.status == 0)
            #expect(cat.output == Data(expected))

            switch readPath {
            case .buffer, .pieces:
                #expect(fileSystem.bufferReads.load(ordering: .relaxed) > 0)
                #expect(fileSystem.descriptorReads.load(ordering: .relaxed) == 0)
            case .fileDescriptor:
                #expect(fileSystem.descriptorReads.load(ordering: .relaxed) > 0)
                #expect(fileSystem.bufferReads.load(ordering: .relaxed) == 0)
            }
        }
    }

    @Test("write then read back through the zero-copy buffer path")
    func bufferReadPath() throws {
        try roundTrip(readPath: .buffer, seed: 1)
    }

    @Test("write then read back through replies in several pieces (iovec)")
    func piecesReadPath() throws {
        try roundTrip(readPath: .pieces, seed: 3)
    }

    @Test("write then read back through the file-descriptor (splice) path")
    func descriptorReadPath() throws {
        try roundTrip(readPath: .fileDescriptor, seed: 2)
    }

    @Test("INIT negotiates large writes, splice for replies, and no writeback cache")
    func negotiation() throws {
        let fileSystem = InMemoryFileSystem()
        try withMount(fileSystem: fileSystem) { mount in
            _ = try POSIX.status(mount.path)  // INIT has happened once the first request is answered
            let info = try #require(fileSystem.negotiated.withLock { $0 })
            #expect(fileSystem.initializations.load(ordering: .relaxed) == 1)
            #expect(info.maxWrite == 1 << 20)
            #expect(!info.enabled.contains(.writebackCache))
            #expect(!info.enabled.contains(.readDirectoryPlus))
            #expect(info.enabled.isSubset(of: FUSECapabilities.defaults))
            #expect(info.enabled == FUSECapabilities.defaults.intersection(info.offered))
            #expect(mount.session.connection == info)

            // Writes of 1 MiB arrive whole: one large write is a single request.
            let big = [UInt8](repeating: 7, count: 1 << 20)
            try POSIX.writeFile(mount.url("big"), big)
            #expect(try POSIX.readFile(mount.url("big")) == big)
        }
    }

    @Test("directIOMappable: direct_io files map MAP_SHARED only when FUSE_DIRECT_IO_ALLOW_MMAP is agreed")
    func directIOMappable() throws {
        for agreed in [false, true] {
            let fileSystem = InMemoryFileSystem(directIO: true)
            try withMount(fileSystem: fileSystem, options: MountOptions(directIOMappable: agreed)) { mount in
                let bytes = (0..<(3 * 4096 + 100)).map { UInt8(truncatingIfNeeded: $0 * 7) }
                try POSIX.writeFile(mount.url("mapped"), bytes)
                #expect(try POSIX.readFile(mount.url("mapped")) == bytes)  // direct reads
                let info = try #require(fileSystem.negotiated.withLock { $0 })
                #expect(info.directIOMappable == agreed)
                #expect(mount.session.connection?.directIOMappable == agreed)

                let fd = POSIX.open(mount.url("mapped"), O_RDONLY, 0)
                try #require(fd >= 0)
                defer { close(fd) }
                let mapping = mmap(nil, bytes.count, PROT_READ, MAP_SHARED, fd, 0)
                if agreed {
                    let address = try #require(mapping == MAP_FAILED ? nil : mapping, "mmap: \(Errno.current)")
                    defer { munmap(address, bytes.count) }
                    #expect(Array(UnsafeRawBufferPointer(start: address, count: bytes.count)) == bytes)
                } else {
                    // What a kernel does without the agreement: no shared mappings of direct_io files.
                    #expect(mapping == MAP_FAILED && errno == ENODEV)
                }
            }
        }
    }

    @Test("readAheadKilobytes turns sequential reads into 1 MiB requests")
    func readAhead() throws {
        let fileSystem = InMemoryFileSystem()
        try withMount(fileSystem: fileSystem, options: MountOptions(readAheadKilobytes: 1024)) { mount in
            let data = [UInt8](repeating: 3, count: 8 << 20)
            try POSIX.writeFile(mount.url("f"), data)
            #expect(try POSIX.readFile(mount.url("f")) == data)
            #expect(fileSystem.largestRead.load(ordering: .relaxed) == 1 << 20)
        }
        let defaults = InMemoryFileSystem()
        try withMount(fileSystem: defaults) { mount in
            try POSIX.writeFile(mount.url("f"), [UInt8](repeating: 3, count: 8 << 20))
            _ = try POSIX.readFile(mount.url("f"))
            #expect(defaults.largestRead.load(ordering: .relaxed) < 1 << 20)
        }
    }

    @Test("empty files, short reads at EOF, and reads past the end")
    func edges() throws {
        try withMount { mount in
            try POSIX.writeFile(mount.url("empty"), [])
            #expect(try POSIX.readFile(mount.url("empty")) == [])
            try POSIX.writeFile(mount.url("small"), Array("hello".utf8))
            let fd = POSIX.open(mount.url("small"), O_RDONLY)
            try #require(fd >= 0)
            defer { close(fd) }
            #expect(try POSIX.preadAll(fd, count: 100, at: 3) == Array("lo".utf8))
            #expect(try POSIX.preadAll(fd, count: 100, at: 5) == [])
            #expect(try POSIX.preadAll(fd, count: 100, at: 1 << 30) == [])
        }
    }

    // MARK: - Directories

    @Test("readdir of many entries continues across offsets", arguments: [false, true])
    func manyEntries(readDirectoryPlus: Bool) throws {
        var options = MountOptions()
        if readDirectoryPlus { options.capabilities.insert(.readDirectoryPlus) }
        let fileSystem = InMemoryFileSystem()
        try withMount(fileSystem: fileSystem, options: options) { mount in
            let count = 1500
            var expected = Set<String>()
            try #require(POSIX.mkdir(mount.url("dir")) == 0)
            #expect(mount.session.connection?.enabled.contains(.readDirectoryPlus) == readDirectoryPlus)
            for index in 0..<count {
                // Long-ish names so the listing needs several readdir requests.
                let name = "entry-\(index)-" + String(repeating: "x", count: index % 40)
                expected.insert(name)
                let fd = POSIX.open(mount.url("dir/\(name)"), O_WRONLY | O_CREAT | O_EXCL)
                try #require(fd >= 0, "create \(name): \(Errno(rawValue: -fd))")
                close(fd)
            }
            let listed = try POSIX.listDirectory(mount.url("dir"))
            #expect(listed.count == count)
            #expect(Set(listed) == expected)

            let ls = try POSIX.run("/bin/ls", ["-1", "-a", mount.url("dir")])
            #expect(ls.status == 0)
            let lines = String(decoding: ls.output, as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(Set(lines) == expected.union([".", ".."]))

            let long = try POSIX.run("/bin/ls", ["-l", mount.url("dir")])
            #expect(long.status == 0)
            #expect(String(decoding: long.output, as: UTF8.self).split(separator: "\n").count == count + 1)

            // The root lists the directory as a directory.
            #expect(try POSIX.listDirectory(mount.path) == ["dir"])
        }
    }

    @Test("mkdir, rmdir, unlink, rename (replace, RENAME_NOREPLACE, RENAME_EXCHANGE), links")
    func namespace() throws {
        try withMount { mount in
            let a = mount.url("a")
            #expect(POSIX.mkdir(a) == 0)
            #expect(POSIX.mkdir(a) == EEXIST)
            #expect(POSIX.mkdir(mount.url("a/b")) == 0)
            #expect(POSIX.rmdir(a) == ENOTEMPTY)
            #expect(POSIX.rmdir(mount.url("a/b")) == 0)
            #expect(POSIX.rmdir(mount.url("a/b")) == ENOENT)
            #expect(try POSIX.status(a).st_nlink == 2)

            try POSIX.writeFile(mount.url("one"), Array("one".utf8))
            try POSIX.writeFile(mount.url("two"), Array("two".utf8))
            #expect(POSIX.rmdir(mount.url("one")) == ENOTDIR)
            #expect(POSIX.unlink(a) == EISDIR)
            #expect(POSIX.open(mount.url("one"), O_WRONLY | O_CREAT | O_EXCL) == -EEXIST)
            #expect(POSIX.open(mount.url("missing"), O_RDONLY) == -ENOENT)
            #expect(POSIX.statErrno(mount.url("missing/x")) == ENOENT)
            #expect(POSIX.open(mount.url("one/x"), O_RDONLY) == -ENOTDIR)
            #expect(POSIX.mkdir(mount.url(String(repeating: "n", count: 256))) == ENAMETOOLONG)

            // Plain rename, then rename replacing an existing file.
            #expect(POSIX.rename(mount.url("one"), mount.url("uno")) == 0)
            #expect(POSIX.statErrno(mount.url("one")) == ENOENT)
            #expect(try POSIX.readFile(mount.url("uno")) == Array("one".utf8))
            #expect(POSIX.rename(mount.url("uno"), mount.url("two")) == 0)
            #expect(try POSIX.readFile(mount.url("two")) == Array("one".utf8))
            #expect(POSIX.statErrno(mount.url("uno")) == ENOENT)

            // RENAME_NOREPLACE and RENAME_EXCHANGE are passed through.
            try POSIX.writeFile(mount.url("three"), Array("three".utf8))
            #expect(POSIX.rename(mount.url("three"), mount.url("two"), flags: .noReplace) == EEXIST)
            #expect(POSIX.rename(mount.url("three"), mount.url("four"), flags: .noReplace) == 0)
            #expect(POSIX.rename(mount.url("four"), mount.url("two"), flags: .exchange) == 0)
            #expect(try POSIX.readFile(mount.url("two")) == Array("three".utf8))
            #expect(try POSIX.readFile(mount.url("four")) == Array("one".utf8))
            #expect(POSIX.rename(mount.url("four"), mount.url("nothing"), flags: .exchange) == ENOENT)

            // Directories: move into another directory, replace an empty one, not a full one.
            #expect(POSIX.mkdir(mount.url("d1")) == 0)
            #expect(POSIX.mkdir(mount.url("d2")) == 0)
            try POSIX.writeFile(mount.url("d2/file"), [1, 2, 3])
            #expect(POSIX.rename(mount.url("d1"), mount.url("d2")) == ENOTEMPTY)
            #expect(POSIX.rename(mount.url("d2"), mount.url("a/d2")) == 0)
            #expect(try POSIX.readFile(mount.url("a/d2/file")) == [1, 2, 3])
            #expect(try POSIX.status(a).st_nlink == 3)
            #expect(POSIX.rename(mount.url("a"), mount.url("a/d2/inside")) == EINVAL)
            #expect(POSIX.rename(mount.url("two"), mount.url("d1")) == EISDIR)

            // Hard and symbolic links.
            #expect(Glibc.link(mount.url("two"), mount.url("two-link")) == 0)
            #expect(try POSIX.status(mount.url("two")).st_nlink == 2)
            #expect(symlink("two", mount.url("two-sym")) == 0)
            var target = [CChar](repeating: 0, count: 64)
            let length = readlink(mount.url("two-sym"), &target, target.count)
            #expect(length == 3)
            #expect(try POSIX.linkStatus(mount.url("two-sym")).st_mode & S_IFMT == S_IFLNK)
            #expect(try POSIX.readFile(mount.url("two-sym")) == Array("three".utf8))
            #expect(POSIX.unlink(mount.url("two")) == 0)
            #expect(try POSIX.readFile(mount.url("two-link")) == Array("three".utf8))

            // An unlinked file stays readable through an open descriptor.
            let fd = POSIX.open(mount.url("two-link"), O_RDONLY)
            try #require(fd >= 0)
            #expect(POSIX.unlink(mount.url("two-link")) == 0)
            #expect(try POSIX.preadAll(fd, count: 10, at: 0) == Array("three".utf8))
            close(fd)

            #expect(Set(try POSIX.listDirectory(mount.path)) == ["a", "d1", "four", "two-sym"])
        }
    }

    // MARK: - Attributes

    @Test("chmod, chown, truncate, ftruncate, utimens")
    func attributes() throws {
        try withMount { mount in
            let path = mount.url("file")
            try POSIX.writeFile(path, Array(repeating: 0xAB, count: 1000))

            #expect(chmod(path, 0o640) == 0)
            #expect(try POSIX.status(path).st_mode == S_IFREG | 0o640)
            #expect(chown(path, 1234, 5678) == 0)
            #expect(try POSIX.status(path).st_uid == 1234)
            #expect(try POSIX.status(path).st_gid == 5678)

            #expect(truncate(path, 10) == 0)
            #expect(try POSIX.status(path).st_size == 10)
            #expect(try POSIX.readFile(path) == Array(repeating: 0xAB, count: 10))
            #expect(truncate(path, 100) == 0)
            #expect(try POSIX.readFile(path) == Array(repeating: 0xAB, count: 10) + Array(repeating: 0, count: 90))

            let fd = POSIX.open(path, O_RDWR)
            try #require(fd >= 0)
            #expect(ftruncate(fd, 5) == 0)
            var st = Glibc.stat()
            #expect(fstat(fd, &st) == 0)
            #expect(st.st_size == 5)
            close(fd)

            // open(O_TRUNC) truncates (via setattr: atomic O_TRUNC is off by default).
            let truncating = POSIX.open(path, O_WRONLY | O_TRUNC)
            try #require(truncating >= 0)
            close(truncating)
            #expect(try POSIX.status(path).st_size == 0)

            var times = [
                timespec(tv_sec: 1_000_000_123, tv_nsec: 456_000_000),
                timespec(tv_sec: 2_000_000_000, tv_nsec: 789),
            ]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
            let stamped = try POSIX.status(path)
            #expect(stamped.st_atim.tv_sec == 1_000_000_123)
            #expect(stamped.st_atim.tv_nsec == 456_000_000)
            #expect(stamped.st_mtim.tv_sec == 2_000_000_000)
            #expect(stamped.st_mtim.tv_nsec == 789)

            let utimeNow = (1 << 30) - 1  // UTIME_NOW
            let utimeOmit = (1 << 30) - 2  // UTIME_OMIT
            times = [timespec(tv_sec: 0, tv_nsec: utimeOmit), timespec(tv_sec: 0, tv_nsec: utimeNow)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
            let touched = try POSIX.status(path)
            #expect(touched.st_atim.tv_sec == 1_000_000_123)
            #expect(abs(touched.st_mtim.tv_sec - time(nil)) < 60)

            #expect(chmod(mount.url("missing"), 0o600) == -1 && errno == ENOENT)
        }
    }

    @Test("statfs reports the file system's numbers")
    func statistics() throws {
        try withMount { mount in
            try POSIX.writeFile(mount.url("f"), Array(repeating: 1, count: 8192))
            var out = statvfs()
            try #require(statvfs(mount.path, &out) == 0)
            #expect(out.f_bsize == 4096)
            #expect(out.f_frsize == 4096)
            #expect(UInt64(out.f_blocks) == InMemoryFileSystem.blockCount)
            #expect(UInt64(out.f_bfree) == InMemoryFileSystem.blockCount - 2)
            #expect(UInt64(out.f_bavail) == InMemoryFileSystem.blockCount - 2)
            #expect(UInt64(out.f_files) == InMemoryFileSystem.fileCount)
            #expect(UInt64(out.f_ffree) == InMemoryFileSystem.fileCount - UInt64(mount.fileSystem.nodeCount))
            #expect(out.f_namemax == 255)
        }
    }

    @Test("invalidateEntry, invalidateInode and notifyDelete drop the kernel's caches")
    func cacheNotifications() throws {
        let fileSystem = InMemoryFileSystem(timeout: 3600)  // the kernel would cache for an hour
        try fileSystem.addFile(name: "a", contents: Array("first".utf8))
        try fileSystem.addFile(name: "b", contents: Array("bee".utf8))
        try fileSystem.addFile(name: "c", contents: Array("sea".utf8))
        try withMount(fileSystem: fileSystem) { mount in
            #expect(try POSIX.status(mount.url("a")).st_size == 5)
            #expect(try POSIX.status(mount.url("b")).st_size == 3)
            #expect(try POSIX.status(mount.url("c")).st_size == 3)

            // Removed behind the kernel's back: still cached until invalidated.
            fileSystem.removeBehindKernel(name: "a")
            #expect(POSIX.statErrno(mount.url("a")) == 0)
            try mount.session.invalidateEntry(parent: .root, name: "a")
            #expect(POSIX.statErrno(mount.url("a")) == ENOENT)
            try mount.session.invalidateEntry(parent: .root, name: "never-looked-up")  // not cached: fine

            // Contents replaced: size and data are stale until the inode is invalidated.
            try fileSystem.replaceBehindKernel(name: "b", contents: Array("a longer bee".utf8))
            #expect(try POSIX.status(mount.url("b")).st_size == 3)
            try mount.session.invalidateInode(try #require(fileSystem.inode(named: "b")))
            #expect(try POSIX.status(mount.url("b")).st_size == 12)
            #expect(try POSIX.readFile(mount.url("b")) == Array("a longer bee".utf8))

            let c = try #require(fileSystem.inode(named: "c"))
            fileSystem.removeBehindKernel(name: "c")
            try mount.session.notifyDelete(parent: .root, child: c, name: "c")
            #expect(POSIX.statErrno(mount.url("c")) == ENOENT)
        }
    }

    // MARK: - Errors

    @Test("thrown Errno values reach the caller unchanged")
    func errnoMapping() throws {
        let fileSystem = InMemoryFileSystem()
        try fileSystem.addFile(name: "fail-\(ENOSPC)", contents: [1, 2, 3])
        try fileSystem.addFile(name: "fail-\(EIO)", contents: [1, 2, 3])
        try fileSystem.addFile(name: "fail-\(EACCES)", contents: [1, 2, 3])
        try withMount(fileSystem: fileSystem) { mount in
            for code in [ENOSPC, EIO, EACCES] {
                let fd = POSIX.open(mount.url("fail-\(code)"), O_RDWR)
                try #require(fd >= 0)
                defer { close(fd) }
                var byte: UInt8 = 0
                #expect(pread(fd, &byte, 1, 0) == -1)
                #expect(errno == code)
                #expect(pwrite(fd, &byte, 1, 0) == -1)
                #expect(errno == code)
            }
        }
    }

    @Test("a read-only mount answers writes with EROFS and still reads")
    func readOnlyMount() throws {
        let fileSystem = InMemoryFileSystem()
        try fileSystem.addFile(name: "hello", contents: Array("hello, world\n".utf8))
        try withMount(fileSystem: fileSystem, options: MountOptions(readOnly: true)) { mount in
            #expect(try POSIX.readFile(mount.url("hello")) == Array("hello, world\n".utf8))
            let cat = try POSIX.run("/bin/cat", [mount.url("hello")])
            #expect(cat.output == Data("hello, world\n".utf8))
            #expect(POSIX.open(mount.url("new"), O_WRONLY | O_CREAT) == -EROFS)
            #expect(POSIX.open(mount.url("hello"), O_WRONLY) == -EROFS)
            #expect(POSIX.mkdir(mount.url("dir")) == EROFS)
            #expect(POSIX.unlink(mount.url("hello")) == EROFS)
            #expect(POSIX.rename(mount.url("hello"), mount.url("other")) == EROFS)
            #expect(chmod(mount.url("hello"), 0o600) == -1 && errno == EROFS)
            var out = statvfs()
            #expect(statvfs(mount.path, &out) == 0)
            #expect(out.f_flag & 1 != 0)  // ST_RDONLY
        }
    }

    // MARK: - Session lifecycle

    @Test("unmount makes run() return; deinit destroys the file system once")
    func lifecycle() throws {
        let fileSystem = InMemoryFileSystem()
        var mount: TestMount? = try TestMount(fileSystem: fileSystem)
        let path = mount!.path
        defer { mount?.tearDown() }
        try POSIX.writeFile(path + "/f", [1])
        // RELEASE is sent asynchronously after close; wait for it before unmounting (the kernel
        // drops pending releases when the connection goes away).
        for _ in 0..<200 where fileSystem.openHandles.load(ordering: .relaxed) != 0 { usleep(5000) }
        #expect(fileSystem.openHandles.load(ordering: .relaxed) == 0)
        #expect(mount!.session.isRunning)
        #expect(mountEntries().contains { $0.mountPoint == path })

        try mount!.session.unmount()
        #expect(mount!.waitForLoop(), "loop did not return")
        #expect(!mount!.session.isRunning)
        #expect(!mount!.session.isMounted)
        #expect(mount!.loopError.withLock { $0 } == nil)
        #expect(!mountEntries().contains { $0.mountPoint == path })
        try mount!.session.unmount()  // idempotent
        #expect(throws: FUSEError.self) { try mount!.session.run() }

        mount!.tearDown()
        mount = nil
        #expect(fileSystem.destructions.load(ordering: .relaxed) == 1)
        #expect(fileSystem.initializations.load(ordering: .relaxed) == 1)
    }

    @Test("a session created but never run unmounts in deinit")
    func neverRun() throws {
        var template = Array((TestEnvironment.directoryPrefix + "XXXXXX").utf8CString)
        let path = String(cString: try #require(mkdtemp(&template)))
        defer { rmdir(path) }
        let fileSystem = InMemoryFileSystem()
        var session: FUSESession? = try FUSESession(
            fileSystem: fileSystem, mountPoint: path,
            options: MountOptions(fsName: "fusekit-test-\(getpid())", subtype: TestEnvironment.subtype))
        #expect(mountEntries().contains { $0.mountPoint == path })
        #expect(session!.fileDescriptor >= 0)
        session = nil
        #expect(!mountEntries().contains { $0.mountPoint == path })
        #expect(fileSystem.destructions.load(ordering: .relaxed) == 0)  // INIT never happened
    }

    @Test("a session on an already open /dev/fuse descriptor")
    func descriptorSession() throws {
        var template = Array((TestEnvironment.directoryPrefix + "XXXXXX").utf8CString)
        let path = String(cString: try #require(mkdtemp(&template)))
        let options = MountOptions(fsName: "fusekit-test-\(getpid())", subtype: TestEnvironment.subtype)
        let fd = try FUSEDevice.mount(at: path, options: options)
        let fileSystem = InMemoryFileSystem()
        let session: FUSESession
        do {
            session = try FUSESession(fileSystem: fileSystem, fileDescriptor: fd, mountPoint: path, options: options)
        } catch {
            close(fd)
            try? FUSEDevice.unmount(path)
            rmdir(path)
            throw error
        }
        #expect(session.fileDescriptor == fd)
        let mount = TestMount(session: session, fileSystem: fileSystem, path: path)
        defer { mount.tearDown() }

        let entry = try #require(mountEntries().last { $0.mountPoint == path })
        #expect(entry.fileSystemType == "fuse.\(TestEnvironment.subtype)")
        #expect(entry.source == "fusekit-test-\(getpid())")
        try POSIX.writeFile(path + "/f", Array(repeating: 9, count: 300_000))
        #expect(try POSIX.readFile(path + "/f") == Array(repeating: 9, count: 300_000))
        #expect(fileSystem.initializations.load(ordering: .relaxed) == 1)

        try session.unmount()
        #expect(mount.waitForLoop())
        #expect(!mountEntries().contains { $0.mountPoint == path })
    }

    @Test("abortConnection ends the loop even with files open")
    func abort() throws {
        let mount = try TestMount()
        defer { mount.tearDown() }
        try POSIX.writeFile(mount.url("f"), [1, 2, 3])
        let fd = POSIX.open(mount.url("f"), O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }

        try mount.session.abortConnection()
        #expect(mount.waitForLoop(), "loop did not return after abort")
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, 0) == -1)
        #expect(errno == ENOTCONN)
    }

    @Test("a stale mount (dead connection) does not affect a fresh mount")
    func staleMount() throws {
        // Simulate a crashed server: abort the connection and leave the mount behind.
        let stale = try TestMount()
        try stale.session.abortConnection()
        #expect(stale.waitForLoop())
        #expect(POSIX.statErrno(stale.path) == ENOTCONN)

        try withMount { mount in
            try POSIX.writeFile(mount.url("f"), [42])
            #expect(try POSIX.readFile(mount.url("f")) == [42])
        }
        stale.tearDown()
        #expect(!mountEntries().contains { $0.mountPoint == stale.path })
    }
}
