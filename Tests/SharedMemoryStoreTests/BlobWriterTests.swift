// vineyard-csi: SharedMemoryStoreTests
// BlobWriterTests.swift: unsealed blobs grow, stay private, and freeze when sealed.

import Testing

@testable import SharedMemoryStore

@Suite struct BlobWriterTests {
    @Test func appendsSequentially() throws {
        try withStore { store, _ in
            let writer = try store.createBlob()
            var expected: [UInt8] = []
            for chunk in 0..<50 {
                let bytes = pattern(seed: UInt64(chunk), count: 1000 + chunk * 37)
                try writer.append(bytes)
                expected += bytes
            }
            #expect(writer.size == expected.count)
            let id = try store.seal(writer)
            let handle = try #require(store.object(id))
            #expect(contents(handle) == expected)
            #expect(handle.meta.typename == "vineyard::Blob")
            #expect(handle.meta.nbytes == expected.count)
            #expect(handle.meta.id == id)
        }
    }

    @Test func randomWritesZeroFillGaps() throws {
        try withStore { store, _ in
            let writer = try store.createBlob()
            try writer.write(at: 10_000, [1, 2, 3])
            try writer.write(at: 5, [9, 9])
            try writer.write(at: 100_000, [7])
            try writer.write(at: 10_001, [5])
            var expected = [UInt8](repeating: 0, count: 100_001)
            expected[5] = 9
            expected[6] = 9
            expected[10_000] = 1
            expected[10_001] = 5
            expected[10_002] = 3
            expected[100_000] = 7
            #expect(try writer.withUnsafeBytes { Array($0) } == expected)
            let handle = try #require(store.object(try store.seal(writer)))
            #expect(contents(handle) == expected)
        }
    }

    @Test func emptyWritesDoNotExtend() throws {
        try withStore { store, _ in
            let writer = try store.createBlob()
            try writer.write(at: 1000, [])
            #expect(writer.size == 0)
            try writer.append([])
            #expect(writer.size == 0)
        }
    }

    @Test func gapsAreZeroEvenInReusedMemory() throws {
        try withStore { store, _ in
            // Dirty some memory, free it, then write sparsely into the same place.
            let dirty = try put(store, [UInt8](repeating: 0xFF, count: 1 << 20))
            try store.delete(dirty)
            let writer = try store.createBlob(expectedSize: 1 << 20)
            #expect(writer.location.offset == 0)
            try writer.write(at: (1 << 20) - 1, [1])
            let handle = try #require(store.object(try store.seal(writer)))
            #expect(handle.bytes.dropLast().allSatisfy { $0 == 0 })
            #expect(handle.bytes.last == 1)
        }
    }

    @Test func truncateShrinksAndZeroExtends() throws {
        try withStore { store, _ in
            let writer = try store.createBlob()
            try writer.append(pattern(seed: 1, count: 5000))
            try writer.truncate(to: 100)
            try writer.truncate(to: 200)
            let expected = Array(pattern(seed: 1, count: 100)) + [UInt8](repeating: 0, count: 100)
            #expect(try writer.withUnsafeBytes { Array($0) } == expected)
            try writer.truncate(to: 0)
            #expect(writer.size == 0)
            try writer.append([42])
            let handle = try #require(store.object(try store.seal(writer)))
            #expect(contents(handle) == [42])
        }
    }

    @Test(arenaPlacementOnly) func growsByMovingAndKeepsContents() throws {
        try withStore { store, _ in
            let writer = try store.createBlob(expectedSize: 4096)
            try writer.append(pattern(seed: 3, count: 4096))
            // Block in-place growth with a sealed neighbour.
            let neighbour = try put(store, [1, 2, 3])
            let before = writer.location.offset
            try writer.append(pattern(seed: 4, count: 3 << 20))
            #expect(writer.location.offset != before)
            #expect(writer.capacity >= writer.size)
            let handle = try #require(store.object(try store.seal(writer)))
            #expect(contents(handle) == pattern(seed: 3, count: 4096) + pattern(seed: 4, count: 3 << 20))
            #expect(contents(try #require(store.object(neighbour))) == [1, 2, 3])
        }
    }

    @Test func invisibleUntilSealed() throws {
        try withStore { store, _ in
            let writer = try store.createBlob(expectedSize: 100)
            try writer.append([1, 2, 3])
            #expect(store.object(writer.id) == nil)
            #expect(store.exists(writer.id))
            #expect(!store.isSealed(writer.id))
            #expect(store.usage.objectCount == 0)
            #expect(store.usage.unsealedCount == 1)
            #expect(throws: StoreError.notFound(writer.id)) { try store.putName("x", writer.id) }
            #expect(store.objectIDs().isEmpty)
            let id = try store.seal(writer, name: "x")
            #expect(id == writer.id && id.isBlob)
            #expect(store.object(named: "x")?.id == id)
            #expect(store.usage.unsealedCount == 0)
        }
    }

    @Test func sealedIsImmutable() throws {
        try withStore { store, _ in
            let writer = try store.createBlob()
            try writer.append([1])
            let id = try store.seal(writer)
            #expect(writer.isSealed)
            #expect(throws: StoreError.alreadySealed) { try writer.append([2]) }
            #expect(throws: StoreError.alreadySealed) { try writer.write(at: 0, [2]) }
            #expect(throws: StoreError.alreadySealed) { try writer.truncate(to: 0) }
            #expect(throws: StoreError.alreadySealed) { try store.seal(writer) }
            #expect(throws: StoreError.alreadySealed) { try writer.withUnsafeMutableBytes { _ in } }
            #expect(contents(try #require(store.object(id))) == [1])
        }
    }

    @Test func droppedOrDiscardedWritersFreeTheirMemory() throws {
        try withStore { store, _ in
            do {
                let writer = try store.createBlob(expectedSize: 1 << 20)
                try writer.append([1])
                #expect(store.usage.bytesUsed == 1 << 20)
            }
            #expect(store.usage.bytesUsed == 0)
            #expect(store.usage.unsealedCount == 0)
            let writer = try store.createBlob(expectedSize: 1 << 20)
            #expect(writer.discard())
            #expect(!writer.discard())
            #expect(throws: StoreError.writerDiscarded) { try writer.append([1]) }
            #expect(store.usage.bytesUsed == 0)
            let other = try store.createBlob(expectedSize: 4096)
            try store.delete(other.id)
            #expect(throws: StoreError.writerDiscarded) { try other.append([1]) }
            #expect(store.usage.bytesUsed == 0)
        }
    }

    @Test(arenaPlacementOnly) func sealReturnsUnusedReservation() throws {
        try withStore { store, _ in
            let writer = try store.createBlob(expectedSize: 10 << 20)
            try writer.append(pattern(seed: 9, count: 1000))
            #expect(store.usage.bytesUsed == 10 << 20)
            let id = try store.seal(writer)
            #expect(store.usage.bytesUsed == 1024)
            #expect(contents(try #require(store.object(id))) == pattern(seed: 9, count: 1000))
        }
    }

    @Test func emptyBlobs() throws {
        try withStore { store, _ in
            let id = try store.seal(try store.createBlob(), name: "empty")
            let handle = try #require(store.object(id))
            #expect(handle.bytes.count == 0)
            #expect(handle.fileDescriptor == -1)
            #expect(handle.meta.nbytes == 0)
            #expect(store.usage.bytesUsed == 0)
        }
    }

    @Test func directMemoryAccessForZeroCopyProducers() throws {
        try withStore { store, _ in
            let writer = try store.createBlob(expectedSize: 8)
            try writer.withUnsafeMutableBytes { buffer in
                #expect(buffer.count >= 8)
                for index in 0..<8 { buffer[index] = UInt8(index) }
            }
            try writer.truncate(to: 8, zeroFill: false)
            let handle = try #require(store.object(try store.seal(writer)))
            #expect(contents(handle) == [0, 1, 2, 3, 4, 5, 6, 7])
        }
    }

    @Test func rejectsBadArguments() throws {
        try withStore { store, _ in
            #expect(throws: StoreError.self) { try store.createBlob(expectedSize: -1) }
            let writer = try store.createBlob()
            #expect(throws: StoreError.self) { try writer.write(at: -1, [1]) }
            #expect(throws: StoreError.self) { try writer.truncate(to: -1) }
            #expect(throws: StoreError.self) { try store.seal(writer, name: "") }
            #expect(throws: StoreError.self) { try store.seal(writer, name: "a\u{0}b") }
            #expect(!writer.isSealed)
        }
    }
}
