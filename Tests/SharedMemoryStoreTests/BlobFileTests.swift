// vineyard-csi: SharedMemoryStoreTests
// BlobFileTests.swift: blobs in files of their own (real tmpfs files, real mappings).

import Foundation
import Glibc
import Testing

@testable import SharedMemoryStore

private let threshold = 64 << 10

/// A configuration with blob files from 64 KiB on.
private func fileConfiguration(_ directory: String, capacity: Int = 64 << 20) -> StoreConfiguration {
    var configuration = testConfiguration(directory, capacity: capacity)
    configuration.blobFileThreshold = threshold
    return configuration
}

/// Opens a store with blob files in a fresh directory.
private func withFileStore<R>(capacity: Int = 64 << 20, _ body: (ObjectStore, StoreConfiguration) throws -> R) throws
    -> R
{
    try withTemporaryDirectory { directory in
        let configuration = fileConfiguration(directory, capacity: capacity)
        return try body(try ObjectStore.open(configuration), configuration)
    }
}

/// The bytes of a descriptor as another process would see them: an independent mapping from
/// offset 0.
private func mappedContents(_ fd: Int32, count: Int) throws -> [UInt8] {
    guard count > 0 else { return [] }
    guard let base = mmap(nil, count, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
        throw TestFailure("mmap failed: errno \(errno)")
    }
    defer { munmap(base, count) }
    return Array(UnsafeRawBufferPointer(start: base, count: count))
}

private func fileStatus(_ fd: Int32) -> stat {
    var info = stat()
    _ = fstat(fd, &info)
    return info
}

private func blobFiles(_ configuration: StoreConfiguration) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: configuration.directory + "/blobs")) ?? []).sorted()
}

@Suite struct BlobFileTests {
    @Test func largeBlobsGetTheirOwnFileSmallOnesStayInTheArena() throws {
        try withFileStore { store, configuration in
            let large = pattern(seed: 1, count: (1 << 20) + 123)
            let small = pattern(seed: 2, count: 1000)
            let largeID = try put(store, large, name: "large")
            let smallID = try put(store, small, name: "small")

            let handle = try #require(store.object(largeID))
            #expect(handle.isOwnFile)
            #expect(handle.location?.offset == 0)
            #expect(handle.fileDescriptor == -1)
            #expect(contents(handle) == large)
            let path = try #require(handle.location?.file)
            #expect(path == configuration.directory + "/blobs/" + String(largeID.rawValue, radix: 16))

            // An independent mapping of the descriptor: byte 0 is the blob's byte 0, and the
            // file is exactly the blob's size.
            let fd = try store.openBlobFile(largeID)
            defer { close(fd) }
            #expect(fcntl(fd, F_GETFL) & O_ACCMODE == O_RDONLY)
            #expect(Int(fileStatus(fd).st_size) == large.count)
            #expect(try mappedContents(fd, count: large.count) == large)
            let handleFD = try handle.openFile()
            defer { close(handleFD) }
            #expect(fileStatus(handleFD).st_ino == fileStatus(fd).st_ino)

            let smallHandle = try #require(store.object(smallID))
            #expect(!smallHandle.isOwnFile)
            #expect(smallHandle.location?.arena == 0)
            #expect(smallHandle.fileDescriptor == store.arenaInfo.fileDescriptor)
            #expect(contents(smallHandle) == small)
            #expect(throws: StoreError.self) { try store.openBlobFile(smallID) }
            #expect(throws: StoreError.notFound(ObjectID(0x8000_0000_0000_0001))) {
                try store.openBlobFile(ObjectID(0x8000_0000_0000_0001))
            }
            #expect(store.usage.blobFileCount == 1)
            #expect(store.usage.blobFileBytes == ArenaAllocator.roundUp(large.count, to: 4096))
            #expect(blobFiles(configuration).count == 1)
        }
    }

    @Test func aWriterIsInvisibleUntilSealed() throws {
        try withFileStore { store, _ in
            let writer = try store.createBlob(expectedSize: 1 << 20)
            #expect(writer.location.isOwnFile)
            try writer.append(pattern(seed: 3, count: 1 << 20))
            #expect(store.object(writer.id) == nil)
            #expect(store.exists(writer.id))
            #expect(!store.isSealed(writer.id))
            #expect(store.objectIDs().isEmpty)
            #expect(throws: StoreError.notFound(writer.id)) { try store.openBlobFile(writer.id) }
            // A writing client gets the file read-write, and sees what the writer wrote.
            let fd = try writer.openFile()
            defer { close(fd) }
            #expect(fcntl(fd, F_GETFL) & O_ACCMODE == O_RDWR)
            #expect(try mappedContents(fd, count: 1 << 20) == pattern(seed: 3, count: 1 << 20))

            let id = try store.seal(writer, name: "file")
            #expect(store.object(named: "file")?.id == id)
            #expect(contents(try #require(store.object(id))) == pattern(seed: 3, count: 1 << 20))
            #expect(throws: StoreError.alreadySealed) { try writer.append([1]) }
            #expect(throws: StoreError.alreadySealed) { try writer.openFile() }
        }
    }

    @Test func growingExtendsTheFileWithoutCopying() throws {
        try withFileStore { store, _ in
            let writer = try store.createBlob(expectedSize: 0, placement: .ownFile)
            try writer.append(pattern(seed: 4, count: 100_000))
            let fd = try writer.openFile()
            defer { close(fd) }
            let inode = fileStatus(fd).st_ino
            var expected = pattern(seed: 4, count: 100_000)
            for round in 0..<6 {
                let chunk = pattern(seed: UInt64(10 + round), count: 1 << 20)
                try writer.append(chunk)
                expected += chunk
                // Same file (nothing moved to another place), the earlier bytes still there.
                #expect(fileStatus(fd).st_ino == inode)
                #expect(fileStatus(fd).st_size >= expected.count)
            }
            try writer.truncate(to: expected.count + 5000)
            expected += [UInt8](repeating: 0, count: 5000)
            #expect(try writer.withUnsafeBytes { Array($0) } == expected)
            // A client's mapping of the same file sees the bytes in place.
            #expect(try mappedContents(fd, count: expected.count) == expected)
            let id = try store.seal(writer)
            #expect(Int(fileStatus(fd).st_size) == expected.count)
            #expect(store.usage.blobFileBytes == ArenaAllocator.roundUp(expected.count, to: 4096))
            #expect(contents(try #require(store.object(id))) == expected)
        }
    }

    @Test func anArenaWriterMovesIntoAFileOnceItReachesTheThreshold() throws {
        try withFileStore { store, _ in
            let writer = try store.createBlob()
            var expected: [UInt8] = []
            for chunk in 0..<40 {
                let bytes = pattern(seed: UInt64(chunk), count: 7_000)
                try writer.append(bytes)
                expected += bytes
                #expect(writer.location.isOwnFile == (writer.capacity >= threshold))
            }
            #expect(writer.location.isOwnFile)
            #expect(store.usage.bytesUsed == store.usage.blobFileBytes)  // the arena range was freed
            let handle = try #require(store.object(try store.seal(writer)))
            #expect(handle.isOwnFile)
            #expect(contents(handle) == expected)
            // A blob that must stay in the arena does.
            let arenaWriter = try store.createBlob(expectedSize: 1 << 20, placement: .arena)
            try arenaWriter.append(pattern(seed: 5, count: 2 << 20))
            #expect(!arenaWriter.location.isOwnFile)
        }
    }

    @Test func capacityCountsFilesAndOutOfMemoryLosesNothing() throws {
        try withFileStore(capacity: 8 << 20) { store, configuration in
            let kept = pattern(seed: 6, count: 3 << 20)
            let keptID = try put(store, kept, name: "kept")
            #expect(store.usage.bytesUsed == 3 << 20)
            #expect(store.usage.bytesAvailable == 5 << 20)

            // A reservation that does not fit.
            #expect(throws: StoreError.self) { try store.createBlob(expectedSize: 6 << 20) }
            #expect(blobFiles(configuration).count == 1)
            // Nor in the arena: files and arena share the capacity.
            #expect(throws: StoreError.self) { try store.createBlob(expectedSize: 6 << 20, placement: .arena) }

            // Growth that does not fit leaves the writer as it was.
            let writer = try store.createBlob(expectedSize: 1 << 20)
            try writer.append(pattern(seed: 7, count: 1 << 20))
            let before = store.usage
            do {
                try writer.write(at: 6 << 20, [1])
                Issue.record("the write should not fit")
            } catch let error as StoreError {
                guard case .outOfMemory = error else { throw error }
            }
            #expect(writer.size == 1 << 20)
            #expect(store.usage == before)
            let fd = try writer.openFile()
            #expect(Int(fileStatus(fd).st_size) == 1 << 20)
            close(fd)
            #expect(try writer.withUnsafeBytes { Array($0) } == pattern(seed: 7, count: 1 << 20))
            try writer.append(pattern(seed: 8, count: 1000))  // still writable
            #expect(contents(try #require(store.object(keptID))) == kept)

            // Freed capacity is usable again.
            try store.delete(keptID)
            writer.discard()
            #expect(store.usage.bytesUsed == 0)
            #expect(blobFiles(configuration).isEmpty)
            let big = try store.createBlob(expectedSize: 6 << 20, placement: .arena)
            big.discard()
        }
    }

    @Test func deletionRemovesTheFileAfterTheLastHandle() throws {
        try withFileStore { store, configuration in
            let bytes = pattern(seed: 9, count: 300_000)
            let id = try put(store, bytes)
            let path = try #require(store.object(id)?.location?.file)
            let first = try #require(store.object(id))
            let second = try #require(store.object(id))
            try store.delete(id)
            #expect(store.object(id) == nil)
            #expect(Sys.exists(path))
            #expect(contents(first) == bytes)
            first.release()
            #expect(Sys.exists(path))
            let fd = try second.openFile()
            #expect(store.usage.blobFileCount == 1)
            second.release()
            #expect(throws: StoreError.self) { try second.openFile() }
            #expect(!Sys.exists(path))
            #expect(store.usage.blobFileCount == 0)
            #expect(store.usage.bytesUsed == 0)
            // A process that opened the file keeps its bytes.
            #expect(try mappedContents(fd, count: bytes.count) == bytes)
            close(fd)

            // Without readers the file goes at once, also through name removal.
            let named = try put(store, bytes, name: "dir/a")
            let namedPath = try #require(store.object(named)?.location?.file)
            try store.removeNames(withPrefix: "dir/")
            #expect(!Sys.exists(namedPath))
            #expect(blobFiles(configuration).isEmpty)
        }
    }

    @Test func snapshotsAndClonesShareFiles() throws {
        try withFileStore { store, configuration in
            for index in 0..<4 { try put(store, pattern(seed: UInt64(index), count: 200_000), name: "vol-1/f\(index)") }
            let files = blobFiles(configuration)
            let change = try store.copyNames(withPrefix: "vol-1/", to: "snap-1/")
            #expect(change.names == 4)
            #expect(blobFiles(configuration) == files)
            #expect(store.usage.blobFileCount == 4)
            for index in 0..<4 { #expect(store.name("snap-1/f\(index)") == store.name("vol-1/f\(index)")) }
            // The volume rewrites a file: the snapshot keeps the old one.
            let old = try #require(store.name("vol-1/f0"))
            try put(store, pattern(seed: 100, count: 150_000), name: "vol-1/f0")
            #expect(try store.deleteIfUnnamed(old) == false)
            #expect(contents(try #require(store.object(named: "snap-1/f0"))) == pattern(seed: 0, count: 200_000))
            try store.removeNames(withPrefix: "vol-1/")
            #expect(store.usage.blobFileCount == 4)
            for index in 0..<4 {
                #expect(contents(try #require(store.object(named: "snap-1/f\(index)"))) == pattern(seed: UInt64(index), count: 200_000))
            }
            try store.removeNames(withPrefix: "snap-1/")
            #expect(blobFiles(configuration).isEmpty)
            #expect(store.usage.bytesUsed == 0)
        }
    }

    @Test func sealedFilesSurviveReopenAndCompactionAndAReboot() throws {
        try withTemporaryDirectory { directory in
            let configuration = fileConfiguration(directory)
            var ids: [ObjectID] = []
            do {
                let store = try ObjectStore.open(configuration)
                for index in 0..<5 {
                    ids.append(try put(store, pattern(seed: UInt64(index), count: 100_000 * (index + 1)), name: "f\(index)"))
                }
                try store.delete(ids.removeLast())
                try store.compact()
                ids.append(try put(store, pattern(seed: 4, count: 90_000), name: "f4"))
            }
            // Reopened without the option: files recorded in the log are still found.
            var plain = configuration
            plain.blobFileThreshold = nil
            do {
                let store = try ObjectStore.open(plain)
                #expect(store.recovery.objects == 5)
                #expect(store.usage.blobFileCount == 5)
                for (index, id) in ids.enumerated() {
                    let handle = try #require(store.object(named: "f\(index)"))
                    #expect(handle.id == id)
                    #expect(handle.isOwnFile)
                    let count = index == 4 ? 90_000 : 100_000 * (index + 1)
                    #expect(contents(handle) == pattern(seed: UInt64(index), count: count))
                }
                #expect(store.orphanedBlobFiles.isEmpty)
            }
            var rebooted = configuration
            rebooted.bootID = "another-boot"
            let store = try ObjectStore.open(rebooted)
            #expect(store.recovery.wipedStaleStore)
            #expect(store.objectIDs().isEmpty)
            #expect(blobFiles(configuration).isEmpty)
        }
    }

    /// Sealing cuts the file after the log record: a crash in between leaves it longer, and
    /// recovery cuts it. A file missing behind the store's back fails the open.
    @Test func recoveryCutsALongFileAndRefusesAMissingOne() throws {
        try withTemporaryDirectory { directory in
            let configuration = fileConfiguration(directory)
            let bytes = pattern(seed: 20, count: 200_000)
            let (path, otherPath) = try {
                let store = try ObjectStore.open(configuration)
                let id = try put(store, bytes, name: "long")
                let other = try put(store, bytes, name: "other")
                return (try #require(store.object(id)?.location?.file), try #require(store.object(other)?.location?.file))
            }()
            #expect(truncate(path, off_t(300_000)) == 0)
            do {
                let store = try ObjectStore.open(configuration)
                let handle = try #require(store.object(named: "long"))
                #expect(contents(handle) == bytes)
                var info = stat()
                #expect(stat(path, &info) == 0)
                #expect(Int(info.st_size) == bytes.count)
            }
            #expect(unlink(otherPath) == 0)
            #expect {
                try ObjectStore.open(configuration)
            } throws: { error in
                guard case .corruptMetadata = error as? StoreError else { return false }
                return true
            }
        }
    }

    @Test func unadoptedFilesAreFreeMemoryAndGoWhenItIsNeeded() throws {
        try withTemporaryDirectory { directory in
            let configuration = fileConfiguration(directory, capacity: 8 << 20)
            _ = try ObjectStore.open(configuration)  // an existing store (a fresh one starts with an empty directory)
            // What a killed writer leaves: a file named after an identifier the log never saw.
            let orphanID = ObjectID(0xFFFF_FFFF_FFFF_F000)  // above anything the clock would give
            let orphanPath = configuration.directory + "/blobs/" + String(orphanID.rawValue, radix: 16)
            let bytes = pattern(seed: 11, count: 3 << 20)
            #expect(FileManager.default.createFile(atPath: orphanPath, contents: Data(bytes)))
            #expect(FileManager.default.createFile(atPath: configuration.directory + "/blobs/junk", contents: Data()))

            let store = try ObjectStore.open(configuration)
            #expect(store.orphanedBlobFiles == [orphanID])
            #expect(store.usage.bytesUsed == 0)
            #expect(blobFiles(configuration) == [String(orphanID.rawValue, radix: 16)])
            // Identifiers handed out later never take an orphan's name.
            #expect(try store.createBlob().id.rawValue > orphanID.rawValue)
            // Small allocations leave it; one that needs its memory removes it.
            try put(store, pattern(seed: 12, count: 1 << 20))
            #expect(Sys.exists(orphanPath))
            try put(store, pattern(seed: 13, count: 5 << 20))
            #expect(!Sys.exists(orphanPath))
            #expect(store.orphanedBlobFiles.isEmpty)
            #expect(throws: StoreError.self) { try store.adoptUnsealedBlob(id: orphanID, size: 10) }
        }
    }
}
