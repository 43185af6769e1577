//
// vineyard-csi: VolumeFSTests
//
// Reading and writing through real mounts: round trips, versions, other mounts and processes.

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Testing
import VolumeFS

@Suite("Data", .serialized, .enabled(if: TestEnvironment.canMount, "needs /dev/fuse and root"))
struct DataTests {
    @Test("create, write 3 MiB sequentially and at random offsets, read back here and through cat")
    func roundTrip() throws {
        try withVolume { store, mount in
            var random = SeededGenerator(seed: 1)
            let size = (3 << 20) + 12345
            let path = mount.url("data.bin")
            let fd = Sys.open(path, O_RDWR | O_CREAT | O_EXCL, 0o640)
            try #require(fd >= 0, "open: \(Errno(rawValue: -fd))")
            var expected = Sys.randomBytes(size, using: &random)
            try Sys.pwriteAll(fd, expected[...], at: 0)
            for _ in 0..<100 {
                let length = Int.random(in: 1...(300 << 10), using: &random)
                let offset = Int.random(in: 0...(size - length), using: &random)
                let chunk = Sys.randomBytes(length, using: &random)
                try Sys.pwriteAll(fd, chunk[...], at: offset)
                expected.replaceSubrange(offset..<(offset + length), with: chunk)
            }
            // Past the end, leaving a hole that reads as zeros.
            let tail = Sys.randomBytes(4096, using: &random)
            try Sys.pwriteAll(fd, tail[...], at: size + 100_000)
            expected += [UInt8](repeating: 0, count: 100_000) + tail

            // The writing descriptor sees what it wrote; the store does not have it yet.
            #expect(mismatch(try Sys.preadAll(fd, count: 8192, at: 1000), expected[1000..<9192]) == nil)
            var st = Glibc.stat()
            #expect(fstat(fd, &st) == 0)
            #expect(Int(st.st_size) == expected.count)
            #expect(store.store.name("vol-1/data.bin") == nil)
            #expect(close(fd) == 0)

            // Closing published it.
            let handle = try #require(store.store.object(named: "vol-1/data.bin"))
            #expect(handle.id.isBlob)
            #expect(mismatch(handle.bytes, expected) == nil)
            handle.release()

            let status = try Sys.status(path)
            #expect(Int(status.st_size) == expected.count)
            #expect(status.st_mode == S_IFREG | 0o640)
            #expect(status.st_uid == geteuid())

            let reader = Sys.open(path, O_RDONLY)
            try #require(reader >= 0)
            defer { close(reader) }
            for _ in 0..<100 {
                let length = Int.random(in: 1...(700 << 10), using: &random)
                let offset = Int.random(in: 0...(expected.count - 1), using: &random)
                let got = try Sys.preadAll(reader, count: length, at: offset)
                #expect(
                    mismatch(got, expected[offset..<min(offset + length, expected.count)]) == nil,
                    "read \(length) at \(offset)")
            }
            #expect(mismatch(try Sys.readFile(path), expected) == nil)
            let cat = try Sys.run("/bin/cat", [path])
            #expect(cat.status == 0)
            #expect(mismatch(cat.output, expected) == nil)
        }
    }

    @Test("a file copied in by /bin/cp through one mount is byte-identical through a second mount")
    func twoMounts() throws {
        try withVolumes(["shared", "shared"]) { _, mounts in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            var random = SeededGenerator(seed: 2)
            let data = Sys.randomBytes((5 << 20) + 777, using: &random)
            try Sys.writeFile(scratch.url("source.bin"), data)

            let copy = try Sys.run("/bin/cp", [scratch.url("source.bin"), mounts[0].url("copy.bin")])
            #expect(copy.status == 0, "\(copy.errorText)")
            // close(2) in cp returned after publishing: the other mount sees it at once.
            let cat = try Sys.run("/bin/cat", [mounts[1].url("copy.bin")])
            #expect(cat.status == 0, "\(cat.errorText)")
            #expect(mismatch(cat.output, data) == nil)
            let sums = try Sys.run("/usr/bin/sha256sum", [mounts[0].url("copy.bin"), mounts[1].url("copy.bin")])
            let digests = sums.text.split(separator: "\n").map { $0.split(separator: " ").first }
            #expect(digests.count == 2 && digests[0] == digests[1])

            // And the other way round, with a directory tree.
            #expect(Sys.mkdir(mounts[1].url("tree")) == 0)
            #expect(Sys.mkdir(mounts[1].url("tree/sub")) == 0)
            try Sys.writeFile(mounts[1].url("tree/sub/leaf.txt"), Array("leaf\n".utf8))
            #expect(try Sys.readFile(mounts[0].url("tree/sub/leaf.txt")) == Array("leaf\n".utf8))
            #expect(try Sys.listDirectory(mounts[0].url("tree")) == ["sub"])
        }
    }

    @Test("other mounts never see a half-written file: absent, or the old version, until close")
    func noHalfWrittenFiles() throws {
        try withVolumes(["vol", "vol"]) { store, mounts in
            let writer = mounts[0]
            let reader = mounts[1]
            var random = SeededGenerator(seed: 3)

            // A new file: absent everywhere else until closed.
            let first = Sys.randomBytes(1 << 20, using: &random)
            let fd = Sys.open(writer.url("new.bin"), O_WRONLY | O_CREAT | O_EXCL)
            try #require(fd >= 0)
            try Sys.pwriteAll(fd, first[...], at: 0)
            let stat = try Sys.run("/usr/bin/stat", ["-c", "%s", reader.url("new.bin")])
            #expect(stat.status != 0, "visible while being written: \(stat.text)")
            #expect(store.store.name("vol/new.bin") == nil)
            // ... but visible, with what was written so far, in the writer's mount.
            #expect(try Sys.status(writer.url("new.bin")).st_size == 1 << 20)
            #expect(try Sys.listDirectory(writer.url("")).contains("new.bin"))
            try Sys.pwriteAll(fd, first[...], at: 1 << 20)
            #expect(close(fd) == 0)
            let whole = try Sys.run("/bin/cat", [reader.url("new.bin")])
            #expect(mismatch(whole.output, first + first) == nil)

            // A rewrite: the old version until close, then the new one.
            let old = Array("the old version of the file\n".utf8)
            try Sys.writeFile(writer.url("doc.txt"), old)
            #expect(try Sys.run("/bin/cat", [reader.url("doc.txt")]).output == Data(old))
            let oldID = try #require(store.store.name("vol/doc.txt"))
            let rewrite = Sys.open(writer.url("doc.txt"), O_WRONLY | O_TRUNC)
            try #require(rewrite >= 0)
            let new = Sys.randomBytes(300_000, using: &random)
            try Sys.pwriteAll(rewrite, new[0..<1000], at: 0)
            for _ in 0..<3 {
                let seen = try Sys.run("/bin/cat", [reader.url("doc.txt")])
                #expect(seen.output == Data(old))
                try Sys.pwriteAll(rewrite, new[1000..<2000], at: 1000)
            }
            #expect(store.store.name("vol/doc.txt") == oldID)
            // The writer's mount reads the version being written.
            let local = try Sys.readFile(writer.url("doc.txt"))
            #expect(mismatch(local, new[0..<2000]) == nil)
            try Sys.pwriteAll(rewrite, new[2000...], at: 2000)
            #expect(close(rewrite) == 0)
            let newID = try #require(store.store.name("vol/doc.txt"))
            #expect(newID != oldID)
            #expect(!store.store.isSealed(oldID), "the replaced version was not deleted")
            // The reader's kernel may cache the old size for the attribute timeout (1 s).
            usleep(1_100_000)
            #expect(mismatch(try Sys.run("/bin/cat", [reader.url("doc.txt")]).output, new) == nil)

            // A shell redirect: the shell opens with O_TRUNC, dup2s and closes the original
            // descriptor before the command writes; still the old version until the end.
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/sh")
            shell.arguments = ["-c", "(printf abc; sleep 0.8; printf def) > '\(writer.url("doc.txt"))'"]
            try shell.run()
            usleep(400_000)
            #expect(store.store.name("vol/doc.txt") == newID)
            shell.waitUntilExit()
            #expect(shell.terminationStatus == 0)
            waitForPublication(store.store)
            #expect(try Sys.readFile(writer.url("doc.txt")) == Array("abcdef".utf8))
            #expect(store.store.name("vol/doc.txt") != newID)
        }
    }

    @Test("rewriting in place (no O_TRUNC) copies the old bytes into the new version")
    func copyOnWrite() throws {
        try withVolume { store, mount in
            let path = mount.url("cow.bin")
            let original = [UInt8](repeating: 0x11, count: 1 << 20)
            try Sys.writeFile(path, original)
            let before = try #require(store.store.name("vol-1/cow.bin"))
            let fd = Sys.open(path, O_RDWR)
            try #require(fd >= 0)
            try Sys.pwriteAll(fd, [0x22, 0x22, 0x22][...], at: 4096)
            #expect(store.store.name("vol-1/cow.bin") == before)
            #expect(close(fd) == 0)
            var expected = original
            expected.replaceSubrange(4096..<4099, with: [0x22, 0x22, 0x22])
            #expect(mismatch(try Sys.readFile(path), expected) == nil)
            #expect(store.store.name("vol-1/cow.bin") != before)

            // Append through O_APPEND.
            let appender = Sys.open(path, O_WRONLY | O_APPEND)
            try #require(appender >= 0)
            #expect(Glibc.write(appender, "tail", 4) == 4)
            #expect(close(appender) == 0)
            #expect(mismatch(try Sys.readFile(path), expected + Array("tail".utf8)) == nil)

            // Two writable descriptors share one version, published when both are closed.
            let base = try #require(store.store.name("vol-1/cow.bin"))
            let first = Sys.open(path, O_RDWR)
            let second = Sys.open(path, O_RDWR)
            try #require(first >= 0 && second >= 0)
            try Sys.pwriteAll(first, [0xA1][...], at: 0)
            try Sys.pwriteAll(second, [0xB2][...], at: 1)
            #expect(try Sys.preadAll(first, count: 2, at: 0) == [0xA1, 0xB2])
            #expect(close(first) == 0)
            #expect(store.store.name("vol-1/cow.bin") == base)
            #expect(close(second) == 0)
            #expect(store.store.name("vol-1/cow.bin") != base)
            expected.replaceSubrange(0..<2, with: [0xA1, 0xB2])
            #expect(mismatch(try Sys.readFile(path), expected + Array("tail".utf8)) == nil)

            // Opening for writing without writing publishes nothing new.
            let idle = try #require(store.store.name("vol-1/cow.bin"))
            let untouched = Sys.open(path, O_RDWR)
            try #require(untouched >= 0)
            #expect(close(untouched) == 0)
            #expect(store.store.name("vol-1/cow.bin") == idle)
        }
    }

    @Test("an open file keeps its bytes when it is unlinked or replaced by a rename")
    func openFilesKeepTheirBytes() throws {
        try withVolume { _, mount in
            let first = [UInt8](repeating: 1, count: 200_000)
            let second = [UInt8](repeating: 2, count: 100_000)
            try Sys.writeFile(mount.url("a"), first)
            let fd = Sys.open(mount.url("a"), O_RDONLY)
            try #require(fd >= 0)
            defer { close(fd) }
            try Sys.writeFile(mount.url("a.tmp"), second)
            #expect(Sys.rename(mount.url("a.tmp"), mount.url("a")) == 0)
            #expect(mismatch(try Sys.readFile(mount.url("a")), second) == nil)
            #expect(mismatch(try Sys.preadAll(fd, count: 300_000, at: 0), first) == nil)

            let other = Sys.open(mount.url("a"), O_RDONLY)
            try #require(other >= 0)
            defer { close(other) }
            #expect(Sys.unlink(mount.url("a")) == 0)
            #expect(Sys.statErrno(mount.url("a")) == ENOENT)
            #expect(mismatch(try Sys.preadAll(other, count: 300_000, at: 0), second) == nil)
            var st = Glibc.stat()
            #expect(fstat(other, &st) == 0)
            #expect(st.st_nlink == 0)
            #expect(st.st_size == 100_000)
        }
    }

    @Test("mmap of a file reads its bytes through the page cache")
    func memoryMap() throws {
        try withVolume { _, mount in
            var random = SeededGenerator(seed: 4)
            let data = Sys.randomBytes((2 << 20) + 100, using: &random)
            try Sys.writeFile(mount.url("mapped.bin"), data)
            let fd = Sys.open(mount.url("mapped.bin"), O_RDONLY)
            try #require(fd >= 0)
            defer { close(fd) }
            let mapping = mmap(nil, data.count, PROT_READ, MAP_SHARED, fd, 0)
            try #require(mapping != MAP_FAILED)
            defer { munmap(mapping, data.count) }
            let mapped = UnsafeRawBufferPointer(start: mapping, count: data.count)
            #expect(mismatch(mapped, data) == nil)
        }
    }

    @Test("files survive unmounting: a new mount, and a reopened store, serve every file and attribute")
    func durability() throws {
        let store = try TestStore()
        defer { store.tearDown() }
        var random = SeededGenerator(seed: 5)
        let files = (0..<20).map { index in
            ("dir\(index % 3)/file-\(index)", Sys.randomBytes(index * 5000, using: &random))
        }
        do {
            let mount = try TestMount(store: store.store, volumeID: "durable")
            defer { mount.tearDown() }
            for directory in 0..<3 { #expect(Sys.mkdir(mount.url("dir\(directory)"), 0o750) == 0) }
            for (name, data) in files { try Sys.writeFile(mount.url(name), data, mode: 0o600) }
            #expect(Sys.mkdir(mount.url("empty")) == 0)
        }
        func check(_ label: String) throws {
            let mount = try TestMount(store: store.store, volumeID: "durable")
            defer { mount.tearDown() }
            for (name, data) in files {
                #expect(mismatch(try Sys.readFile(mount.url(name)), data) == nil, "\(label): \(name)")
                #expect(try Sys.status(mount.url(name)).st_mode == S_IFREG | 0o600, "\(label): \(name)")
            }
            #expect(Set(try Sys.listDirectory(mount.path)) == ["dir0", "dir1", "dir2", "empty"], "\(label)")
            #expect(try Sys.status(mount.url("dir1")).st_mode == S_IFDIR | 0o750, "\(label)")
        }
        try check("remount")
        try store.reopen()
        try check("reopened store")
        #expect(
            VolumeFileSystem.usage(store: store.store, volumeID: "durable")
                == VolumeUsage(bytes: files.reduce(0) { $0 + $1.1.count }, files: 20, directories: 4))
    }
}
