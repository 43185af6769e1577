// vineyard-csi: SharedMemoryStoreTests
// ObjectStoreTests.swift: reading, deleting, reference counting, capacity and usage.

import POSIXCore
import Testing

@testable import SharedMemoryStore

@Suite struct ObjectStoreTests {
    @Test(arenaPlacementOnly) func readsWithoutCopying() throws {
        try withStore { store, _ in
            let writer = try store.createBlob(expectedSize: 4096)
            try writer.append(pattern(seed: 1, count: 4096))
            let location = writer.location
            let id = try store.seal(writer)
            let first = try #require(store.object(id))
            let second = try #require(store.object(id))
            // Both handles point at the same bytes in the shared mapping.
            #expect(first.bytes.baseAddress == second.bytes.baseAddress)
            #expect(first.fileOffset == location.offset)
            #expect(first.fileDescriptor == store.arenaInfo.fileDescriptor)
            #expect(first.location == BlobLocation(arena: 0, offset: location.offset, size: 4096))
            #expect(first.bytes.baseAddress == UnsafeRawPointer(store.arena.pointer(at: location.offset)))
        }
    }

    @Test func handleKeepsObjectAliveAfterNameAndObjectDeletion() throws {
        try withStore { store, _ in
            let bytes = pattern(seed: 7, count: 256 << 10)
            let id = try put(store, bytes, name: "vol-1/file")
            let handle = try #require(store.object(named: "vol-1/file"))
            try store.deleteName("vol-1/file")
            try store.delete(id)
            #expect(store.object(id) == nil)
            #expect(store.usage.objectCount == 0)
            // The memory is still allocated and not reused while the handle lives.
            #expect(store.usage.bytesUsed == 256 << 10)
            for seed in 0..<8 { try put(store, pattern(seed: 100 + UInt64(seed), count: 256 << 10)) }
            #expect(contents(handle) == bytes)
            handle.release()
            handle.release()  // idempotent
            #expect(store.usage.bytesUsed == 8 * (256 << 10))
        }
    }

    @Test func deinitReleasesToo() throws {
        try withStore { store, _ in
            let id = try put(store, [1, 2, 3])
            do {
                let handle = try #require(store.object(id))
                try store.delete(id)
                #expect(handle.bytes.count == 3)
                #expect(store.usage.bytesUsed == 64)
            }
            #expect(store.usage.bytesUsed == 0)
        }
    }

    @Test func deleteRemovesNamesAndFailsForUnknown() throws {
        try withStore { store, _ in
            let id = try put(store, [1], name: "a")
            try store.putName("b", id)
            try store.delete(id)
            #expect(store.name("a") == nil)
            #expect(store.name("b") == nil)
            #expect(store.usage.nameCount == 0)
            #expect(throws: StoreError.notFound(id)) { try store.delete(id) }
        }
    }

    @Test func capacityExhaustionFailsCleanlyAndKeepsEverything() throws {
        try withStore(capacity: 8 << 20) { store, _ in
            var stored: [(ObjectID, [UInt8])] = []
            for seed in 0..<7 {
                let bytes = pattern(seed: UInt64(seed), count: 1 << 20)
                stored.append((try put(store, bytes, name: "obj-\(seed)"), bytes))
            }
            // A blob that cannot fit.
            #expect(throws: StoreError.outOfMemory(requested: 2 << 20, available: 1 << 20)) {
                try store.createBlob(expectedSize: 2 << 20)
            }
            // A writer that grows past the capacity.
            let writer = try store.createBlob()
            try writer.append(pattern(seed: 99, count: 512 << 10))
            do {
                try writer.append(pattern(seed: 98, count: 1 << 20))
                Issue.record("expected outOfMemory")
            } catch let error as StoreError {
                guard case .outOfMemory = error else { throw error }
            }
            // The writer is intact and can still be sealed with what it had.
            #expect(writer.size == 512 << 10)
            let partial = try store.seal(writer)
            #expect(contents(try #require(store.object(partial))) == pattern(seed: 99, count: 512 << 10))
            for (index, (id, bytes)) in stored.enumerated() {
                #expect(contents(try #require(store.object(id))) == bytes)
                #expect(store.name("obj-\(index)") == id)
            }
            #expect(StoreError.outOfMemory(requested: 1, available: 0).errno == .noSpace)
            #expect(StoreError.outOfMemory(requested: 1, available: 0).vineyardStatusCode == 41)
            // Deleting makes room again.
            try store.delete(stored[0].0)
            try store.delete(stored[1].0)
            try put(store, pattern(seed: 5, count: 2 << 20))
        }
    }

    @Test func usageFigures() throws {
        try withStore(capacity: 16 << 20) { store, _ in
            #expect(store.usage.capacity == 16 << 20)
            #expect(store.usage.bytesUsed == 0)
            let a = try put(store, [UInt8](repeating: 1, count: 100), name: "a")
            try put(store, [UInt8](repeating: 2, count: 1 << 20))
            _ = try store.createObject(ObjectMeta(typename: "vineyard::Scalar<int>", fields: ["value_": 42]), name: "s")
            let usage = store.usage
            #expect(usage.bytesUsed == 128 + (1 << 20))
            #expect(usage.objectCount == 3)
            #expect(usage.nameCount == 2)
            #expect(usage.bytesAvailable == (16 << 20) - usage.bytesUsed)
            try store.delete(a)
            #expect(store.usage.objectCount == 2)
        }
    }

    @Test func capacityIsRoundedToTwoMebibytes() throws {
        try withStore(capacity: 3 << 20) { store, _ in
            #expect(store.usage.capacity == 4 << 20)
            #expect(store.arenaInfo.size == 4 << 20)
        }
    }

    @Test(arenaPlacementOnly) func freedMemoryIsReusedWarm() throws {
        try withStore(capacity: 64 << 20) { store, _ in
            let first = try put(store, pattern(seed: 1, count: 8 << 20))
            let offset = try #require(store.object(first)).fileOffset
            try store.delete(first)
            #expect(store.usage.warmFreeBytes >= 8 << 20)
            let writer = try store.createBlob(expectedSize: 8 << 20)
            #expect(writer.location.offset == offset)
            writer.discard()
        }
    }

    @Test(arenaPlacementOnly) func prefaultMakesTheStartOfTheArenaWarm() throws {
        try withStore(capacity: 64 << 20, prefault: 16 << 20) { store, _ in
            #expect(store.usage.warmFreeBytes == 16 << 20)
            let writer = try store.createBlob(expectedSize: 4 << 20)
            #expect(writer.location.offset == 0)
            #expect(store.usage.warmFreeBytes == 12 << 20)
        }
    }

    @Test(arenaPlacementOnly) func trimReleasesFreeMemory() throws {
        try withStore(capacity: 64 << 20) { store, _ in
            let id = try put(store, pattern(seed: 1, count: 8 << 20))
            try store.delete(id)
            #expect(store.trim() >= 8 << 20)
            #expect(store.usage.warmFreeBytes < 4096)
            // Cold memory is backed again on the next use.
            let again = try put(store, pattern(seed: 2, count: 8 << 20))
            #expect(contents(try #require(store.object(again))) == pattern(seed: 2, count: 8 << 20))
        }
    }

    @Test func metadataObjectsAndPersist() throws {
        try withStore { store, _ in
            let blob = try put(store, pattern(seed: 1, count: 48))
            let blobMeta = try #require(store.meta(blob))
            let tensor = ObjectMeta(
                typename: "vineyard::Tensor<double>", nbytes: 48,
                fields: ["shape_": "[2, 3]", "value_type_": "float64", "order_": "\"C\""],
                members: ["buffer_": blobMeta])
            let tensorID = try store.createObject(tensor)
            #expect(!tensorID.isBlob)
            var frame = ObjectMeta(
                typename: "vineyard::DataFrame", members: ["col": try #require(store.meta(tensorID))])
            frame["columns_"] = "[\"col\"]"
            let frameID = try store.createObject(frame, name: "df")
            let handle = try #require(store.object(named: "df"))
            #expect(handle.id == frameID)
            #expect(handle.bytes.count == 0)
            #expect(handle.fileDescriptor == -1)
            #expect(handle.meta.members["col"]?.members["buffer_"]?.id == blob)
            #expect(handle.meta.blobIDs == [blob])

            try store.persist(frameID)
            let persisted = try #require(store.meta(frameID))
            #expect(!persisted.isTransient)
            #expect(persisted.members["col"]?.isTransient == false)
            #expect(persisted.members["col"]?.members["buffer_"]?.isTransient == true)  // blobs stay transient
            #expect(store.meta(tensorID)?.isTransient == false)
            #expect(store.meta(blob)?.isTransient == true)

            try store.updateMeta(frameID) { $0["__name"] = "df" }
            #expect(store.meta(frameID)?["__name"] == "df")
            #expect(store.objects(where: { $0.typename.hasPrefix("vineyard::Tensor") }).map(\.id) == [tensorID])
        }
    }

    @Test func createObjectWithReservedIdentifier() throws {
        try withStore { store, _ in
            let id = store.makeObjectID()
            #expect(!id.isBlob)
            var meta = ObjectMeta(typename: "vineyard::Scalar<int>", id: id)
            meta["signature"] = JSONValue(integer: store.makeObjectID().rawValue)
            let created = try store.createObject(meta)
            #expect(created == id)
            #expect(throws: StoreError.self) { try store.createObject(meta) }
            meta.id = ObjectID(1 << 63 | 5)
            #expect(throws: StoreError.self) { try store.createObject(meta) }
        }
    }

    @Test func identifiersAreUniqueAndShaped() throws {
        try withStore { store, _ in
            var seen = Set<ObjectID>()
            for _ in 0..<10_000 { #expect(seen.insert(store.makeObjectID()).inserted) }
            let blob = try store.createBlob().id
            #expect(blob.isBlob)
            #expect(blob != .emptyBlob && blob != .invalid)
        }
    }

    @Test func closedStoreRejectsChanges() throws {
        try withStore { store, _ in
            let id = try put(store, [1])
            store.close()
            #expect(throws: StoreError.storeClosed) { try store.createBlob() }
            #expect(throws: StoreError.storeClosed) { try store.putName("a", id) }
            #expect(throws: StoreError.storeClosed) { try store.delete(id) }
            #expect(store.object(id) != nil)
        }
    }
}
