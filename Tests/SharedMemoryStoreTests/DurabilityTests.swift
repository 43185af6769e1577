// vineyard-csi: SharedMemoryStoreTests
// DurabilityTests.swift: restart recovery, torn log tails, compaction, reboots.

import Foundation
import Glibc
import Testing

@testable import SharedMemoryStore

@Suite struct DurabilityTests {
    @Test func restartRecoversObjectsNamesAndMetadata() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory)
            var expected: [String: [UInt8]] = [:]
            var ids: [String: ObjectID] = [:]
            var metaID: ObjectID?
            do {
                let store = try ObjectStore.open(configuration)
                #expect(store.recovery.created)
                for index in 0..<50 {
                    let bytes = pattern(seed: UInt64(index), count: index * 997)
                    let name = "vol/\(index)"
                    ids[name] = try put(store, bytes, name: name)
                    expected[name] = bytes
                }
                // Changes after creation: delete, unname, rename, metadata object, persist.
                try store.delete(ids["vol/3"]!)
                expected["vol/3"] = nil
                try store.deleteName("vol/4")
                expected["vol/4"] = nil
                try store.renameName(from: "vol/5", to: "moved/5")
                expected["moved/5"] = expected.removeValue(forKey: "vol/5")
                ids["moved/5"] = ids["vol/5"]
                metaID = try store.createObject(
                    ObjectMeta(
                        typename: "vineyard::Tensor<int64>", fields: ["shape_": "[3]", "signature": .uint(1 << 63)]),
                    name: "tensor")
                try store.persist(metaID!)
                let unsealed = try store.createBlob(expectedSize: 1 << 20)
                try unsealed.append(pattern(seed: 1000, count: 1 << 20))
                _ = unsealed  // never sealed: must not come back
            }
            let store = try ObjectStore.open(configuration)
            #expect(!store.recovery.created)
            #expect(store.recovery.discardedTailBytes == 0)
            #expect(store.usage.unsealedCount == 0)
            for (name, bytes) in expected {
                let handle = try #require(store.object(named: name), "\(name)")
                #expect(handle.id == ids[name])
                #expect(contents(handle) == bytes, "\(name)")
            }
            #expect(store.name("vol/4") == nil)
            #expect(store.object(ids["vol/4"]!) != nil)  // unnamed, not deleted
            #expect(store.object(ids["vol/3"]!) == nil)
            let meta = try #require(store.meta(metaID!))
            #expect(meta.typename == "vineyard::Tensor<int64>")
            #expect(!meta.isTransient)
            #expect(meta["signature"] == .uint(1 << 63))
            #expect(store.name("tensor") == metaID)
            let sealedBytes =
                expected.values.reduce(0) { $0 + accountedBytes($1.count) }
                + accountedBytes(4 * 997)  // vol/4 still exists without a name
            #expect(store.usage.bytesUsed == sealedBytes)
            // New identifiers never collide with recovered ones.
            let fresh = try put(store, [1])
            #expect(!ids.values.contains(fresh))
            #expect(fresh > ids.values.max()!)
        }
    }

    @Test func tornTailIsCutOff() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory)
            do {
                let store = try ObjectStore.open(configuration)
                try put(store, [1, 2, 3], name: "kept")
                try put(store, [4, 5, 6], name: "torn")
            }
            // Cut the last record in half, as a crash in the middle of write(2) would.
            let logPath = configuration.directory + "/meta.log"
            let size = try #require(try FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int)
            #expect(truncate(logPath, off_t(size - 10)) == 0)
            let store = try ObjectStore.open(configuration)
            #expect(store.recovery.discardedTailBytes > 0)
            #expect(contents(try #require(store.object(named: "kept"))) == [1, 2, 3])
            #expect(store.name("torn") == nil)
            #expect(store.usage.objectCount == 1)
            // Appends after recovery land after the last good record and survive another restart.
            try put(store, [7], name: "after")
            _ = store
        }
    }

    @Test func garbageTailIsCutOff() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory)
            do {
                let store = try ObjectStore.open(configuration)
                try put(store, [1], name: "a")
            }
            let handle = try #require(FileHandle(forWritingAtPath: configuration.directory + "/meta.log"))
            handle.seekToEndOfFile()
            handle.write(Data([0x10, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF]) + Data(repeating: 0x55, count: 16))
            try handle.close()
            do {
                let store = try ObjectStore.open(configuration)
                #expect(store.recovery.discardedTailBytes == 24)
                try put(store, [2], name: "b")
            }
            let store = try ObjectStore.open(configuration)
            #expect(store.recovery.discardedTailBytes == 0)
            #expect(store.name("a") != nil && store.name("b") != nil)
        }
    }

    @Test func corruptHeaderRefusesToOpen() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory)
            do { _ = try ObjectStore.open(configuration) }
            let logPath = configuration.directory + "/meta.log"
            let handle = try #require(FileHandle(forUpdatingAtPath: logPath))
            try handle.seek(toOffset: 12)
            handle.write(Data([0xFF, 0xFF]))
            try handle.close()
            #expect(
                throws: StoreError.corruptMetadata(path: logPath, reason: "the log does not start with a valid header")
            ) {
                try ObjectStore.open(configuration)
            }
        }
    }

    @Test func rebootStartsEmptyAndClean() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory)
            do {
                let store = try ObjectStore.open(configuration)
                try put(store, pattern(seed: 1, count: 1 << 20), name: "a")
            }
            configuration.bootID = "another-boot"
            let store = try ObjectStore.open(configuration)
            #expect(store.recovery.wipedStaleStore)
            #expect(store.usage.objectCount == 0)
            #expect(store.usage.bytesUsed == 0)
            #expect(store.name("a") == nil)
            // The old arena bytes are gone, not merely unreferenced.
            let writer = try store.createBlob(expectedSize: 1 << 20)
            try writer.truncate(to: 1 << 20, zeroFill: false)
            let id = try store.seal(writer)
            #expect(try #require(store.object(id)).bytes.allSatisfy { $0 == 0 })
        }
    }

    @Test func missingArenaStartsEmpty() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory)
            do {
                let store = try ObjectStore.open(configuration)
                try put(store, [1], name: "a")
            }
            #expect(unlink(configuration.directory + "/arena-0") == 0)
            let store = try ObjectStore.open(configuration)
            #expect(store.recovery.wipedStaleStore)
            #expect(store.usage.objectCount == 0)
        }
    }

    @Test func compactionKeepsStateAndShrinksTheLog() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory)
            configuration.compactionThreshold = 64 << 10
            var survivors: [String: [UInt8]] = [:]
            do {
                let store = try ObjectStore.open(configuration)
                for round in 0..<2_000 {
                    let bytes = pattern(seed: UInt64(round), count: 100)
                    let name = "n\(round % 50)"
                    let old = store.name(name)
                    try put(store, bytes, name: name)
                    if let old { try store.delete(old) }
                    survivors[name] = bytes
                }
                let logSize = try #require(
                    try FileManager.default.attributesOfItem(atPath: configuration.directory + "/meta.log")[.size]
                        as? Int)
                #expect(logSize < 4 * (64 << 10))  // compacted along the way, not 2,000 records long
            }
            let store = try ObjectStore.open(configuration)
            #expect(store.usage.objectCount == 50)
            for (name, bytes) in survivors { #expect(contents(try #require(store.object(named: name))) == bytes) }
        }
    }

    @Test func capacityCanChangeOnReopenWhenObjectsFit() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, capacity: 16 << 20)
            do {
                let store = try ObjectStore.open(configuration)
                try put(store, pattern(seed: 1, count: 10 << 20), name: "big")
            }
            configuration.capacity = 32 << 20
            do {
                let store = try ObjectStore.open(configuration)
                #expect(store.usage.capacity == 32 << 20)
                #expect(contents(try #require(store.object(named: "big"))) == pattern(seed: 1, count: 10 << 20))
            }
            configuration.capacity = 4 << 20
            #expect(throws: StoreError.self) { try ObjectStore.open(configuration) }
            configuration.capacity = 16 << 20
            let store = try ObjectStore.open(configuration)
            #expect(store.usage.capacity == 16 << 20)
        }
    }

    @Test func oneStoreInstancePerDirectory() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory)
            let store = try ObjectStore.open(configuration)
            #expect(throws: StoreError.storeLocked(path: configuration.directory + "/lock")) {
                try ObjectStore.open(configuration)
            }
            _ = store
        }
    }

    @Test func hostCrashSyncModeWorks() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory)
            configuration.syncMode = .hostCrash
            do {
                let store = try ObjectStore.open(configuration)
                try put(store, [1, 2], name: "a")
            }
            let store = try ObjectStore.open(configuration)
            #expect(contents(try #require(store.object(named: "a"))) == [1, 2])
        }
    }
}
