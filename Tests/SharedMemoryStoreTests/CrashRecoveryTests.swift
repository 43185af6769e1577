// vineyard-csi: SharedMemoryStoreTests
// CrashRecoveryTests.swift: kill -9 of a real writer process, then restart.
//
// How: the test re-runs this test binary (`/proc/self/exe`, filtered to `crashChildWriter`)
// with an environment variable that enables that otherwise-skipped test. The child is the
// production code in a separate process: it seals objects, keeps sealing and deleting on two
// threads, and grows an unsealed blob. The parent waits until the child is busy, sends SIGKILL,
// and reopens the store itself.

import Foundation
import Glibc
import Synchronization
import Testing

@testable import SharedMemoryStore

private let childDirectoryVariable = "SMS_CRASH_CHILD_DIRECTORY"

private func crashConfiguration(_ directory: String) -> StoreConfiguration {
    var configuration = StoreConfiguration(directory: directory + "/store", capacity: 256 << 20)
    configuration.bootID = "test-boot"
    configuration.compactionThreshold = 256 << 10  // compactions happen during the churn too
    configuration.blobFileThreshold = forcedBlobFileThreshold
    return configuration
}

private func stableSize(_ index: Int) -> Int { 1 + (index * 104_729) % 300_000 }

@Suite struct CrashRecoveryTests {
    /// The writer that gets killed. Enabled only in the child process.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childDirectoryVariable] != nil))
    func crashChildWriter() throws {
        let directory = ProcessInfo.processInfo.environment[childDirectoryVariable]!
        let store = try ObjectStore.open(crashConfiguration(directory))
        for index in 0..<200 {
            try put(store, pattern(seed: UInt64(index), count: stableSize(index)), name: "stable/\(index)")
        }
        let unsealed = try store.createBlob(expectedSize: 4 << 20)
        try unsealed.append(pattern(seed: 999_999, count: 4 << 20))
        try "\(unsealed.id)\n".write(toFile: directory + "/ready", atomically: true, encoding: .utf8)
        runOnThreads(2) { thread in
            var round = 0
            while true {
                let seed = UInt64(thread) << 32 | UInt64(round)
                let name = "churn/\(thread)/\(round % 64)"
                let old = store.name(name)
                let meta = ObjectMeta(typename: "vineyard::Blob", fields: ["seed": JSONValue(integer: seed)])
                _ = try? put(store, pattern(seed: seed, count: 1 + (round * 7_919) % 200_000), name: name, meta: meta)
                if let old { try? store.delete(old) }
                if thread == 0 { try? unsealed.append(pattern(seed: seed, count: 64 << 10)) }
                round += 1
            }
        }
    }

    @Test func killNineDuringWritesThenRestart() throws {
        try withTemporaryDirectory { directory in
            // The child's diagnostics (a sanitizer run reports races there) go to a file we check.
            let childLog = directory + "/child.log"
            #expect(FileManager.default.createFile(atPath: childLog, contents: nil))
            let logHandle = try #require(FileHandle(forWritingAtPath: childLog))
            defer { try? logHandle.close() }
            let process = try launchTestChild(
                "crashChildWriter", variable: childDirectoryVariable, directory: directory, standardError: logHandle)
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

            let readyPath = directory + "/ready"
            try waitForFile(readyPath, createdBy: process)
            let unsealedID = try #require(
                ObjectID(try String(contentsOfFile: readyPath, encoding: .utf8).trimmingWhitespace()))
            usleep(300_000)  // let the churn run: the kill lands in the middle of it
            #expect(kill(process.processIdentifier, SIGKILL) == 0)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            #expect(process.terminationStatus == SIGKILL)

            let childDiagnostics = try String(contentsOfFile: childLog, encoding: .utf8)
            #expect(!childDiagnostics.contains("ThreadSanitizer"), "\(childDiagnostics.prefix(4000))")
            #expect(!childDiagnostics.contains("Fatal error"), "\(childDiagnostics.prefix(4000))")

            let store = try ObjectStore.open(crashConfiguration(directory))
            // Sealed before the crash: byte-identical.
            for index in 0..<200 {
                let handle = try #require(store.object(named: "stable/\(index)"))
                #expect(contents(handle) == pattern(seed: UInt64(index), count: stableSize(index)), "stable/\(index)")
            }
            // Sealed during the churn: whatever survived is complete and correct.
            var churned = 0
            for id in store.objectIDs() {
                let handle = try #require(store.object(id))
                guard let seed = handle.meta["seed"]?.uint64Value else { continue }
                churned += 1
                #expect(contents(handle) == pattern(seed: seed, count: handle.size), "\(id)")
            }
            #expect(churned > 0)
            for (name, id) in store.names(withPrefix: "churn/") { #expect(store.object(id) != nil, "\(name)") }
            // The unsealed blob is gone and its memory is free.
            #expect(!store.exists(unsealedID))
            #expect(store.usage.unsealedCount == 0)
            let live = sealedBytesUsed(store)
            #expect(store.usage.bytesUsed == live)
            // All the free space is usable.
            let writer = try store.createBlob(expectedSize: store.usage.bytesAvailable / 2)
            writer.discard()
            print("crash recovery: \(store.recovery), \(churned) churn objects survived")
        }
    }
}
