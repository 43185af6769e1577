//
// vineyard-csi: VolumeFSTests
//
// Space and permissions through real mounts: statfs, a full store, quotas, read-only volumes.

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Testing
import VolumeFS

@Suite("Limits", .serialized, .enabled(if: TestEnvironment.canMount, "needs /dev/fuse and root"))
struct LimitTests {
    @Test("statfs reports the store's capacity and usage, or the quota")
    func statistics() throws {
        try withVolume(capacity: 64 << 20) { store, mount in
            var before = statvfs()
            try #require(statvfs(mount.path, &before) == 0)
            #expect(Int(before.f_frsize) * Int(before.f_blocks) == store.store.usage.capacity)
            #expect(before.f_namemax == 255)
            try Sys.writeFile(mount.url("eight"), [UInt8](repeating: 8, count: 8 << 20))
            var after = statvfs()
            try #require(statvfs(mount.path, &after) == 0)
            let used = (Int(before.f_bfree) - Int(after.f_bfree)) * Int(after.f_frsize)
            #expect(used >= 8 << 20 && used < 9 << 20, "statfs shows \(used) bytes more in use")
            #expect(Int(after.f_bfree) * Int(after.f_frsize) == store.store.usage.bytesAvailable / 4096 * 4096)
        }
        try withVolume(capacity: 64 << 20, quotaBytes: 16 << 20) { _, mount in
            try Sys.writeFile(mount.url("four"), [UInt8](repeating: 4, count: 4 << 20))
            var stats = statvfs()
            try #require(statvfs(mount.path, &stats) == 0)
            #expect(Int(stats.f_frsize) * Int(stats.f_blocks) == 16 << 20)
            #expect(Int(stats.f_frsize) * Int(stats.f_bavail) == 12 << 20)
        }
    }

    @Test("a full store answers ENOSPC; the failed file stays absent or as it was, everything else intact")
    func storeFull() throws {
        try withVolume(capacity: 32 << 20) { store, mount in
            let keep = [UInt8](repeating: 0x4B, count: 4 << 20)
            try Sys.writeFile(mount.url("keep.bin"), keep)

            // A new file that cannot fit.
            let chunk = [UInt8](repeating: 0x42, count: 1 << 20)
            let fd = Sys.open(mount.url("big.bin"), O_WRONLY | O_CREAT)
            try #require(fd >= 0)
            var failure: Int32 = 0
            for index in 0..<64 {
                if Glibc.pwrite(fd, chunk, chunk.count, off_t(index << 20)) < 0 {
                    failure = errno
                    break
                }
            }
            #expect(failure == ENOSPC)
            #expect(close(fd) == -1 && errno == ENOSPC)
            #expect(Sys.statErrno(mount.url("big.bin")) == ENOENT)
            #expect(store.store.name("vol-1/big.bin") == nil)
            #expect(mismatch(try Sys.readFile(mount.url("keep.bin")), keep) == nil)

            // A rewrite that cannot fit leaves the old version.
            let rewrite = try Sys.run(
                "/usr/bin/dd", ["if=/dev/zero", "of=\(mount.url("keep.bin"))", "bs=1M", "count=64"])
            #expect(rewrite.status != 0)
            #expect(rewrite.errorText.contains("No space left on device"))
            #expect(mismatch(try Sys.readFile(mount.url("keep.bin")), keep) == nil)

            // The memory of the failed versions is free again.
            #expect(store.store.usage.unsealedCount == 0)
            try Sys.writeFile(mount.url("after.bin"), [UInt8](repeating: 1, count: 16 << 20))
            #expect(VolumeFileSystem.usage(store: store.store, volumeID: "vol-1").bytes == (20 << 20))
        }
    }

    @Test("a volume quota answers ENOSPC beyond it and counts rewrites by their new size")
    func quota() throws {
        try withVolume(capacity: 64 << 20, quotaBytes: 4 << 20) { store, mount in
            try Sys.writeFile(mount.url("three"), [UInt8](repeating: 3, count: 3 << 20))
            let fd = Sys.open(mount.url("two"), O_WRONLY | O_CREAT)
            try #require(fd >= 0)
            let chunk = [UInt8](repeating: 2, count: 1 << 20)
            #expect(Glibc.write(fd, chunk, chunk.count) == chunk.count)  // 4 MiB: just fits
            #expect(Glibc.write(fd, chunk, chunk.count) == -1 && errno == ENOSPC)
            #expect(close(fd) == -1 && errno == ENOSPC)
            #expect(Sys.statErrno(mount.url("two")) == ENOENT)
            #expect(VolumeFileSystem.usage(store: store.store, volumeID: "vol-1").bytes == 3 << 20)

            // Rewriting the 3 MiB file with 3.5 MiB fits: the old version does not count.
            try Sys.writeFile(mount.url("three"), [UInt8](repeating: 5, count: (7 << 20) / 2))
            #expect(truncate(mount.url("three"), 5 << 20) == -1 && errno == ENOSPC)
            #expect(try Sys.status(mount.url("three")).st_size == (7 << 20) / 2)
            #expect(Sys.unlink(mount.url("three")) == 0)
            #expect(
                VolumeFileSystem.usage(store: store.store, volumeID: "vol-1")
                    == VolumeUsage(bytes: 0, files: 0, directories: 0))
            try Sys.writeFile(mount.url("full"), [UInt8](repeating: 1, count: 4 << 20))
        }
    }

    @Test("a read-only volume serves reads and answers EROFS, from the kernel (ro) and from the file system itself")
    func readOnly() throws {
        let store = try TestStore()
        defer { store.tearDown() }
        do {
            let mount = try TestMount(store: store.store, volumeID: "ro")
            defer { mount.tearDown() }
            try Sys.writeFile(mount.url("hello"), Array("hello\n".utf8))
            #expect(Sys.mkdir(mount.url("dir")) == 0)
        }
        for mountReadOnly in [true, false] {
            let mount = try TestMount(store: store.store, volumeID: "ro", readOnly: true, mountReadOnly: mountReadOnly)
            defer { mount.tearDown() }
            #expect(try Sys.readFile(mount.url("hello")) == Array("hello\n".utf8))
            #expect(try Sys.run("/bin/cat", [mount.url("hello")]).output == Data("hello\n".utf8))
            #expect(Sys.open(mount.url("new"), O_WRONLY | O_CREAT) == -EROFS)
            #expect(Sys.open(mount.url("hello"), O_WRONLY) == -EROFS)
            #expect(Sys.open(mount.url("hello"), O_RDWR | O_TRUNC) == -EROFS)
            #expect(Sys.mkdir(mount.url("other")) == EROFS)
            #expect(Sys.rmdir(mount.url("dir")) == EROFS)
            #expect(Sys.unlink(mount.url("hello")) == EROFS)
            #expect(Sys.rename(mount.url("hello"), mount.url("moved")) == EROFS)
            #expect(chmod(mount.url("hello"), 0o600) == -1 && errno == EROFS)
            #expect(truncate(mount.url("hello"), 0) == -1 && errno == EROFS)
            #expect(symlink("hello", mount.url("link")) == -1 && errno == EROFS)
            var stats = statvfs()
            #expect(statvfs(mount.path, &stats) == 0)
            #expect((stats.f_flag & UInt(ST_RDONLY) != 0) == mountReadOnly)
        }
        #expect(try #require(store.store.object(named: "ro/hello")).size == 6)
    }
}
