// vineyard-csi: SharedMemoryStoreTests
// SharingTests.swift: name trees that share objects (snapshots, clones) and when objects die.

import Foundation
import Testing

@testable import SharedMemoryStore

@Suite struct SharingTests {
    @Test func copyBindsTheSameObjectsWithoutCopyingBytes() throws {
        try withStore { store, _ in
            let a = try put(store, pattern(seed: 1, count: 1 << 20), name: "vol-1/a")
            let b = try put(store, [2, 3], name: "vol-1/dir/b")
            _ = try put(store, [9], name: "vol-10/other")  // shares the "vol-1" prefix bytes only
            let used = store.usage.bytesUsed
            let change = try store.copyNames(withPrefix: "vol-1/", to: "snap-1/")
            #expect(change == PrefixChange(names: 2, bytes: (1 << 20) + 2, deletedObjects: 0))
            #expect(store.name("snap-1/a") == a)
            #expect(store.name("snap-1/dir/b") == b)
            #expect(store.name("snap-1/other") == nil)
            #expect(store.usage.bytesUsed == used)
            #expect(Set(store.names(of: a)) == ["vol-1/a", "snap-1/a"])
            #expect(throws: StoreError.self) { try store.copyNames(withPrefix: "vol-1/", to: "snap-1/") }
            #expect(throws: StoreError.self) { try store.copyNames(withPrefix: "vol-1/", to: "vol-1/x/") }
            #expect(try store.copyNames(withPrefix: "empty/", to: "snap-2/").names == 0)
        }
    }

    @Test func anObjectLivesWhileAnyTreeNamesIt() throws {
        try withStore { store, _ in
            let old = try put(store, pattern(seed: 2, count: 4096), name: "vol-1/f")
            try store.copyNames(withPrefix: "vol-1/", to: "snap-1/")
            // The volume rebinds its name to a new version and drops the old one if unnamed.
            let new = try put(store, [1])
            #expect(try store.putName("vol-1/f", new) == old)
            #expect(try store.deleteIfUnnamed(old) == false)
            #expect(contents(try #require(store.object(named: "snap-1/f"))) == pattern(seed: 2, count: 4096))
            // Removing the snapshot's tree deletes what nothing else names.
            let removed = try store.removeNames(withPrefix: "snap-1/")
            #expect(removed == PrefixChange(names: 1, bytes: 4096, deletedObjects: 1))
            #expect(store.object(old) == nil)
            #expect(store.object(new) != nil)
        }
    }

    /// A frame written through vineyard.sock: a composite object whose members are tensors over
    /// blobs. Dropping the file drops its members too, unless something else refers to them.
    @Test func deletingACompositeObjectTakesItsUnreferencedMembers() throws {
        try withStore { store, _ in
            func tensor(_ bytes: [UInt8]) throws -> (tensor: ObjectID, blob: ObjectID) {
                let blob = try put(store, bytes)
                var meta = ObjectMeta(typename: "vineyard::Tensor<uint8>")
                let buffer: ObjectMeta = try #require(store.meta(blob))
                meta.members["buffer_"] = buffer
                return (try store.createObject(meta), blob)
            }
            func frame(_ columns: [(tensor: ObjectID, blob: ObjectID)], name: String? = nil) throws -> ObjectID {
                var meta = ObjectMeta(typename: "vineyard::DataFrame")
                for (index, column) in columns.enumerated() {
                    let member: ObjectMeta = try #require(store.meta(column.tensor))
                    meta.members["__values_-value-\(index)"] = member
                }
                return try store.createObject(meta, name: name)
            }
            let free = store.usage.bytesAvailable
            let a = try tensor(pattern(seed: 1, count: 1 << 20))
            let b = try tensor(pattern(seed: 2, count: 1 << 20))
            let shared = try tensor(pattern(seed: 3, count: 1 << 20))
            let named = try tensor(pattern(seed: 4, count: 1 << 20))
            try store.putName("vol-1/column", named.tensor)
            let first = try frame([a, shared, named], name: "vol-1/first")
            let second = try frame([b, shared], name: "vol-1/second")

            try store.deleteName("vol-1/first")
            #expect(try store.deleteIfUnnamed(first))
            #expect(store.meta(first) == nil)
            #expect(store.meta(a.tensor) == nil && store.object(a.blob) == nil)
            // Still a member of the second frame, or still named.
            #expect(store.object(shared.blob) != nil && store.meta(shared.tensor) != nil)
            #expect(store.object(named.blob) != nil && store.name("vol-1/column") == named.tensor)

            let removed = try store.removeNames(withPrefix: "vol-1/")
            #expect(removed.names == 2)
            #expect(removed.deletedObjects == 7)  // second, its two tensors and their blobs, the named tensor and blob
            for id in [second, b.tensor, b.blob, shared.tensor, shared.blob, named.tensor, named.blob] {
                #expect(store.meta(id) == nil)
            }
            #expect(store.usage.bytesAvailable == free)
        }
    }

    @Test func removingATreeKeepsObjectsOtherTreesName() throws {
        try withStore { store, _ in
            let shared = try put(store, [1, 2, 3], name: "vol-1/shared")
            let own = try put(store, [4], name: "vol-1/own")
            try store.copyNames(withPrefix: "vol-1/", to: "vol-2/")
            try store.deleteName("vol-2/own")
            let removed = try store.removeNames(withPrefix: "vol-1/")
            #expect(removed.names == 2 && removed.deletedObjects == 1)
            #expect(store.object(own) == nil)
            #expect(store.name("vol-2/shared") == shared)
            #expect(try store.removeNames(withPrefix: "vol-1/").names == 0)
            #expect(throws: StoreError.self) { try store.removeNames(withPrefix: "") }
        }
    }

    @Test func aReaderKeepsTheMemoryOfADeletedObject() throws {
        try withStore { store, _ in
            let bytes = pattern(seed: 3, count: 64 << 10)
            let id = try put(store, bytes, name: "vol-1/f")
            let handle = try #require(store.object(id))
            try store.removeNames(withPrefix: "vol-1/")
            #expect(store.object(id) == nil)
            #expect(contents(handle) == bytes)  // still mapped and intact for the reader
            handle.release()
        }
    }

    @Test func sharedTreesSurviveReopening() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, capacity: 16 << 20, prefault: 0)
            let id: ObjectID
            do {
                let store = try ObjectStore.open(configuration)
                id = try put(store, pattern(seed: 4, count: 8192), name: "vol-1/f")
                try store.copyNames(withPrefix: "vol-1/", to: "snap-1/")
                try store.removeNames(withPrefix: "vol-1/")
            }
            do {
                let store = try ObjectStore.open(configuration)
                #expect(store.name("vol-1/f") == nil)
                #expect(store.name("snap-1/f") == id)
                let handle = try #require(store.object(named: "snap-1/f"))
                #expect(contents(handle) == pattern(seed: 4, count: 8192))
                handle.release()
                try store.removeNames(withPrefix: "snap-1/")
            }
            let reopened = try ObjectStore.open(configuration)
            #expect(reopened.object(id) == nil)
            #expect(reopened.usage.bytesUsed == 0)
        }
    }

    @Test func putNameMovesTheNamesSharingTheObjectUnderThePrefixInOneRecord() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, capacity: 16 << 20, prefault: 0)
            let (old, new): (ObjectID, ObjectID)
            do {
                let store = try ObjectStore.open(configuration)
                old = try put(store, [1], name: "vol/a")
                try store.putName("vol/dir/b", old)
                try store.putName("snap/a", old)  // another volume's name: stays
                let other = try put(store, [3], name: "vol/other")
                new = try put(store, [2])
                #expect(try store.putName("vol/a", new, withNamesSharingItsObjectUnder: "vol/") == old)
                #expect(store.name("vol/a") == new && store.name("vol/dir/b") == new)
                #expect(store.name("snap/a") == old && store.name("vol/other") == other)
                #expect(store.names(of: old) == ["snap/a"])
                // A name bound to nothing yet moves alone.
                #expect(try store.putName("vol/c", new, withNamesSharingItsObjectUnder: "vol/") == nil)
            }
            let reopened = try ObjectStore.open(configuration)
            #expect(reopened.name("vol/a") == new && reopened.name("vol/dir/b") == new && reopened.name("vol/c") == new)
            #expect(reopened.name("snap/a") == old)
        }
    }
}
