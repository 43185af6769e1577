// vineyard-csi: SharedMemoryStoreTests
// SecondProcessTests.swift: another process maps blob memory through the descriptor.
//
// The arena descriptor becomes the child's standard input (inherited, as SCM_RIGHTS would hand
// it over), and a Python child maps it with mmap — no path is involved.

import Foundation
import Glibc
import Testing

@testable import SharedMemoryStore

@Suite(.enabled(if: python3 != nil, "needs python3")) struct SecondProcessTests {
    @Test func anotherProcessReadsASealedBlobThroughTheDescriptor() throws {
        try withStore { store, _ in
            try put(store, [1, 2, 3])  // so the blob under test is not at offset 0
            let bytes = pattern(seed: 42, count: 300_000)
            let id = try put(store, bytes)
            let handle = try #require(store.object(id))
            // Map the whole arena from offset 0, as vineyard clients do, and read at the offset.
            let script = """
                import mmap, os, sys
                offset, size, arena = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
                m = mmap.mmap(0, arena, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=0)
                sys.stderr.write(str(os.fstat(0).st_ino))
                sys.stdout.buffer.write(m[offset:offset + size])
                """
            // A blob in a file of its own: the file, from offset 0, exactly the blob's size.
            let fd = handle.isOwnFile ? try handle.openFile() : handle.fileDescriptor
            defer { if handle.isOwnFile { close(fd) } }
            let mapSize = handle.isOwnFile ? handle.size : store.arenaInfo.size
            let result = try runProcess(
                python3!, ["-c", script, "\(handle.fileOffset)", "\(handle.size)", "\(mapSize)"], stdinFD: fd)
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output == bytes)
            var info = stat()
            #expect(fstat(fd, &info) == 0)
            #expect(result.error == "\(info.st_ino)")
        }
    }

    @Test func anotherProcessReadsABlobFileFromOffsetZero() throws {
        try withStore { store, _ in
            let bytes = pattern(seed: 43, count: 300_001)
            let writer = try store.createBlob(expectedSize: bytes.count, placement: .ownFile)
            try writer.append(bytes)
            let handle = try #require(store.object(try store.seal(writer)))
            let fd = try handle.openFile()
            defer { close(fd) }
            let script = """
                import mmap, os, sys
                size = os.fstat(0).st_size
                m = mmap.mmap(0, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=0)
                sys.stdout.buffer.write(m[:])
                """
            let result = try runProcess(python3!, ["-c", script], stdinFD: fd)
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output == bytes)
        }
    }

    /// Both backing paths (a small blob's 2 MiB chunk under the lock, a large blob's exact range
    /// outside it), with and without this process's page tables populated.
    @Test(arguments: [false, true], [100_000, 3 << 20])
    func anotherProcessFillsAnUnsealedBlob(writtenElsewhere: Bool, size: Int) throws {
        try withStore { store, _ in
            try fill(store, writtenElsewhere: writtenElsewhere, size: size, placement: .automatic)
        }
    }

    /// A blob in a file of its own, which the client maps from offset 0.
    @Test(arguments: [false, true])
    func anotherProcessFillsAnUnsealedBlobFile(writtenElsewhere: Bool) throws {
        try withStore { store, _ in
            try fill(store, writtenElsewhere: writtenElsewhere, size: 3 << 20, placement: .ownFile)
        }
    }

    private func fill(_ store: ObjectStore, writtenElsewhere: Bool, size: Int, placement: BlobPlacement) throws {
        // vineyard's create_buffer: a fixed-size reservation the client writes through its map.
        let writer = try store.createBlob(
            expectedSize: size, writtenElsewhere: writtenElsewhere, placement: placement)
        try writer.truncate(to: size, zeroFill: false)
        let location = writer.location
        let script = """
            import mmap, sys
            offset, size = int(sys.argv[1]), int(sys.argv[2])
            base = offset - offset % mmap.ALLOCATIONGRANULARITY
            m = mmap.mmap(0, offset - base + size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=base)
            pattern = bytes((i * 7 + 3) % 256 for i in range(256))
            m[offset - base:offset - base + size] = (pattern * (size // 256 + 1))[:size]
            m.flush()
            """
        let fd = location.isOwnFile ? try writer.openFile() : writer.fileDescriptor
        defer { if location.isOwnFile { close(fd) } }
        let result = try runProcess(python3!, ["-c", script, "\(location.offset)", "\(size)"], stdinFD: fd)
        #expect(result.status == 0, "\(result.error)")
        let id = try store.seal(writer)
        let handle = try #require(store.object(id))
        #expect(handle.isOwnFile == location.isOwnFile)
        let expected: [UInt8] = (0..<size).map { (index: Int) -> UInt8 in UInt8((index * 7 + 3) % 256) }
        #expect(contents(handle) == expected)
    }
}
