// vineyard-csi: SharedMemoryStoreTests
// BlobFileCrashTests.swift: kill -9 of a process writing blob files, then restart and adoption.
//
// How (as in CrashRecoveryTests): the test re-runs this test binary filtered to
// `blobFileCrashChild`, enabled by an environment variable. The child seals blobs in files
// and in the arena, leaves two file-backed writers unsealed, says which, and keeps sealing and
// deleting until the parent kills it with SIGKILL and reopens the store.

import Foundation
import Glibc
import Testing

@testable import SharedMemoryStore

private let childDirectoryVariable = "SMS_BLOB_FILE_CRASH_CHILD_DIRECTORY"

private func blobFileCrashConfiguration(_ directory: String) -> StoreConfiguration {
    var configuration = StoreConfiguration(directory: directory + "/store", capacity: 128 << 20)
    configuration.bootID = "test-boot"
    configuration.blobFileThreshold = 64 << 10
    configuration.compactionThreshold = 64 << 10
    return configuration
}

private func sealedSize(_ index: Int) -> Int { 1 + (index * 104_729) % 400_000 }

@Suite struct BlobFileCrashTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childDirectoryVariable] != nil))
    func blobFileCrashChild() throws {
        let directory = ProcessInfo.processInfo.environment[childDirectoryVariable]!
        let store = try ObjectStore.open(blobFileCrashConfiguration(directory))
        for index in 0..<60 {
            try put(store, pattern(seed: UInt64(index), count: sealedSize(index)), name: "sealed/\(index)")
        }
        let adopted = try store.createBlob(expectedSize: 1 << 20)
        try adopted.append(pattern(seed: 1000, count: 700_000))
        let abandoned = try store.createBlob(expectedSize: 2 << 20)
        try abandoned.append(pattern(seed: 1001, count: 2 << 20))
        try "\(adopted.id) \(adopted.size) \(abandoned.id)\n".write(
            toFile: directory + "/ready", atomically: true, encoding: .utf8)
        var round = 0
        while true {
            let name = "churn/\(round % 16)"
            let old = store.name(name)
            let meta = ObjectMeta(typename: "vineyard::Blob", fields: ["seed": JSONValue(integer: UInt64(round))])
            _ = try? put(store, pattern(seed: UInt64(round), count: 1 + (round * 7_919) % 300_000), name: name, meta: meta)
            if let old { try? store.delete(old) }
            round += 1
        }
    }

    @Test func killNineThenRecoverAndAdopt() throws {
        try withTemporaryDirectory { directory in
            let process = try launchTestChild(
                "blobFileCrashChild", variable: childDirectoryVariable, directory: directory)
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            let readyPath = directory + "/ready"
            try waitForFile(readyPath, createdBy: process)
            let fields = try String(contentsOfFile: readyPath, encoding: .utf8).trimmingWhitespace()
                .split(separator: " ").map(String.init)
            let adoptedID = try #require(ObjectID(fields[0]))
            let adoptedSize = try #require(Int(fields[1]))
            let abandonedID = try #require(ObjectID(fields[2]))
            usleep(300_000)
            #expect(kill(process.processIdentifier, SIGKILL) == 0)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)

            let configuration = blobFileCrashConfiguration(directory)
            let store = try ObjectStore.open(configuration)
            // Sealed before the crash, in files and in the arena: byte-identical.
            var inFiles = 0
            for index in 0..<60 {
                let handle = try #require(store.object(named: "sealed/\(index)"))
                #expect(contents(handle) == pattern(seed: UInt64(index), count: sealedSize(index)), "sealed/\(index)")
                if handle.isOwnFile {
                    inFiles += 1
                    let fd = try handle.openFile()
                    var info = stat()
                    fstat(fd, &info)
                    close(fd)
                    #expect(Int(info.st_size) == handle.size)
                }
            }
            #expect(inFiles > 20)
            // Sealed during the churn: complete and correct.
            for id in store.objectIDs() {
                let handle = try #require(store.object(id))
                guard let seed = handle.meta["seed"]?.uint64Value else { continue }
                #expect(contents(handle) == pattern(seed: seed, count: handle.size), "\(id)")
            }
            // Every file is a sealed blob's or an unsealed writer's kept for adoption; the
            // latter do not count as used.
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: configuration.directory + "/blobs"))
            let sealedFiles = Set(
                store.objectIDs().compactMap { store.object($0)?.location?.file?.split(separator: "/").last.map(String.init) })
            #expect(files.subtracting(sealedFiles).count == store.orphanedBlobFiles.count)
            #expect(store.orphanedBlobFiles.contains(adoptedID))
            #expect(store.orphanedBlobFiles.contains(abandonedID))
            #expect(!store.exists(adoptedID) && !store.exists(abandonedID))
            #expect(store.usage.unsealedCount == 0)
            #expect(store.usage.blobFileCount == sealedFiles.count)

            // Hand-over: the writer continues where the killed process stopped.
            let writer = try store.adoptUnsealedBlob(id: adoptedID, size: adoptedSize)
            #expect(writer.id == adoptedID)
            #expect(writer.size == adoptedSize)
            #expect(try writer.withUnsafeBytes { Array($0) } == pattern(seed: 1000, count: 700_000))
            try writer.append(pattern(seed: 1002, count: 500_000))
            let id = try store.seal(writer, name: "adopted")
            #expect(
                contents(try #require(store.object(named: "adopted")))
                    == pattern(seed: 1000, count: 700_000) + pattern(seed: 1002, count: 500_000))
            #expect(id == adoptedID)
            #expect(throws: StoreError.self) { try store.adoptUnsealedBlob(id: adoptedID, size: 0) }

            // The rest goes when hand-over is done.
            let abandonedPath = configuration.directory + "/blobs/" + String(abandonedID.rawValue, radix: 16)
            #expect(Sys.exists(abandonedPath))
            #expect(store.removeOrphanedBlobFiles() >= 1)
            #expect(!Sys.exists(abandonedPath))
            #expect(store.orphanedBlobFiles.isEmpty)
            #expect(store.usage.bytesUsed == sealedBytesUsed(store))
        }
    }

    /// A process that closes its store and ends (without sealing) hands its writers' files over
    /// like a killed one; an explicit discard before closing removes the file.
    @Test func closingHandsUnsealedFilesOver() throws {
        try withTemporaryDirectory { directory in
            let configuration = blobFileCrashConfiguration(directory)
            let (keptID, discardedPath) = try { () throws -> (ObjectID, String) in
                let store = try ObjectStore.open(configuration)
                let kept = try store.createBlob(expectedSize: 1 << 20)
                try kept.append(pattern(seed: 30, count: 1 << 20))
                let discarded = try store.createBlob(expectedSize: 1 << 20)
                let path = try #require(discarded.location.file)
                discarded.discard()
                #expect(!Sys.exists(path))
                store.close()
                return (kept.id, path)
            }()
            let store = try ObjectStore.open(configuration)
            #expect(store.orphanedBlobFiles == [keptID])
            #expect(!Sys.exists(discardedPath))
            let writer = try store.adoptUnsealedBlob(id: keptID, size: 1 << 20)
            #expect(try writer.withUnsafeBytes { Array($0) } == pattern(seed: 30, count: 1 << 20))
        }
    }
}
