// vineyard-csi: SharedMemoryStoreTests
// ConcurrencyTests.swift: many OS threads writing, reading, renaming and deleting at once.

import Foundation
import Synchronization
import Testing

@testable import SharedMemoryStore

@Suite struct ConcurrencyTests {
    @Test func concurrentWritersAndReaders() throws {
        try withStore(capacity: 256 << 20) { store, _ in
            let failures = FailureLog()
            let writersDone = Atomic<Int>(0)
            let writers = 6
            runOnThreads(writers + 4) { thread in
                if thread < writers {
                    defer { writersDone.add(1, ordering: .releasing) }
                    var previous: ObjectID?
                    for round in 0..<150 {
                        let seed = UInt64(thread) << 32 | UInt64(round)
                        let size = Int(seed % 7 == 0 ? 200_000 : 1 + (seed &* 2_654_435_761) % 20_000)
                        let meta = ObjectMeta(typename: "vineyard::Blob", fields: ["seed": JSONValue(integer: seed)])
                        do {
                            let writer = try store.createBlob()
                            let bytes = pattern(seed: seed, count: size)
                            // Mix appends and random-offset writes.
                            let half = size / 2
                            try writer.write(at: half, Array(bytes[half...]))
                            try writer.write(at: 0, Array(bytes[..<half]))
                            let id = try store.seal(writer, meta: meta, name: "w\(thread)/\(round)")
                            guard let handle = store.object(named: "w\(thread)/\(round)"), handle.id == id,
                                Array(handle.bytes) == bytes
                            else {
                                failures.record("writer \(thread) round \(round): read-back mismatch")
                                continue
                            }
                            if let previous, round % 3 == 0 { try store.delete(previous) }
                            previous = id
                        } catch {
                            failures.record("writer \(thread) round \(round): \(error)")
                        }
                    }
                } else {
                    var reads = 0
                    while writersDone.load(ordering: .acquiring) < writers || reads < 100 {
                        for (name, _) in store.names(withPrefix: "w\(reads % writers)/", limit: 20) {
                            guard let handle = store.object(named: name) else { continue }  // deleted meanwhile
                            reads += 1
                            guard let seed = handle.meta["seed"]?.uint64Value,
                                Array(handle.bytes) == pattern(seed: seed, count: handle.size)
                            else {
                                failures.record("reader saw wrong bytes for \(name)")
                                continue
                            }
                        }
                        _ = store.usage
                    }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
            let usage = store.usage
            #expect(usage.unsealedCount == 0)
            let live = sealedBytesUsed(store)
            #expect(usage.bytesUsed == live)
        }
    }

    @Test func nameReplacementIsAtomicForReaders() throws {
        try withStore(capacity: 64 << 20) { store, _ in
            let failures = FailureLog()
            let done = Atomic<Bool>(false)
            let size = 64 << 10
            try put(
                store, [UInt8](repeating: 0, count: size), name: "hot",
                meta: ObjectMeta(typename: "gen", fields: ["gen": 0]))
            let observed = Atomic<Int>(0)
            runOnThreads(4) { thread in
                if thread == 0 {
                    defer { done.store(true, ordering: .releasing) }
                    for generation in 1...400 {
                        do {
                            let value = UInt8(generation % 251)
                            let id = try put(
                                store, [UInt8](repeating: value, count: size),
                                meta: ObjectMeta(typename: "gen", fields: ["gen": JSONValue(integer: generation)]))
                            if let old = try store.putName("hot", id) { try store.delete(old) }
                        } catch {
                            failures.record("writer: \(error)")
                        }
                    }
                } else {
                    while !done.load(ordering: .acquiring) {
                        guard let handle = store.object(named: "hot") else {
                            failures.record("the name was briefly unbound")
                            continue
                        }
                        let generation = Int(handle.meta["gen"]?.int64Value ?? -1)
                        let expected = UInt8(generation % 251)
                        usleep(50)  // hold the handle while the writer deletes the old object
                        if handle.size != size || !handle.bytes.allSatisfy({ $0 == expected }) {
                            failures.record("mixed or wrong content for generation \(generation)")
                        }
                        observed.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
            #expect(observed.load(ordering: .relaxed) > 0)
            #expect(store.usage.objectCount == 1)
            #expect(store.usage.bytesUsed == size)
        }
    }

    @Test func concurrentGrowthAndRenames() throws {
        try withStore(capacity: 128 << 20) { store, _ in
            let failures = FailureLog()
            runOnThreads(8) { thread in
                do {
                    let writer = try store.createBlob()
                    var expected: [UInt8] = []
                    for chunk in 0..<64 {
                        let bytes = pattern(seed: UInt64(thread * 1000 + chunk), count: 4096 + chunk * 512)
                        try writer.append(bytes)
                        expected += bytes
                    }
                    try store.seal(writer, name: "tmp/\(thread)")
                    try store.renameName(from: "tmp/\(thread)", to: "final/\(thread)")
                    guard let handle = store.object(named: "final/\(thread)"), Array(handle.bytes) == expected else {
                        failures.record("thread \(thread): contents differ after growth")
                        return
                    }
                } catch {
                    failures.record("thread \(thread): \(error)")
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all)")
            #expect(store.names(withPrefix: "final/").count == 8)
            #expect(store.names(withPrefix: "tmp/").isEmpty)
        }
    }
}
