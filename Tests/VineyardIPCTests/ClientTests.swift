// vineyard-csi: VineyardIPCTests
// ClientTests.swift: VineyardClient against a real vineyardd.

import Foundation
import Glibc
import SharedMemoryStore
import POSIXCore
import Testing
import VineyarddTestSupport

@testable import VineyardIPC

@Suite(
    "VineyardClient against vineyardd", .serialized,
    .enabled(if: VineyarddProcess.available, "vineyardd not installed (run scripts/install-deps.sh)"))
struct ClientTests {
    @Test func registersAndReportsStatus() throws {
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        #expect(client.server.rpcEndpoint.isEmpty == false)
        let status = try client.instanceStatus()
        #expect(status["memory_limit"]?.int64Value ?? 0 >= 64 << 20)
        #expect(status["deployment"]?.stringValue == "local")
    }

    @Test func writesAFileAndReadsItBackWithoutCopy() throws {
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let object = try client.writeFile(named: "vol/dir/a.bin", size: payload.count) { bytes in
            payload.withUnsafeBytes { bytes.copyMemory(from: $0) }
        }
        let file = try #require(try client.file(named: "vol/dir/a.bin"))
        #expect(file.object == object)
        #expect(file.size == payload.count)
        #expect(file.chunks.map(\.instanceID) == [client.server.instanceID])
        let bytes = try #require(try client.buffers(of: file, name: "vol/dir/a.bin").first).bytes
        #expect(Array(bytes) == payload)
        // A second connection maps the same shared memory: the bytes are vineyardd's, not ours.
        let other = try VineyardClient.connect(socketPath: server.socket)
        defer { other.close() }
        let otherFile = try #require(try other.file(named: "vol/dir/a.bin"))
        let seen = try #require(try other.buffers(of: otherFile, name: "vol/dir/a.bin").first).bytes
        #expect(Array(seen) == payload)
        let meta = try #require(try client.meta(object))
        #expect(meta["typename"]?.stringValue == VineyardClient.fileTypeName)
        #expect(meta["transient"]?.boolValue == false)
    }

    @Test func emptyFilesNeedNoBuffer() throws {
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        try client.writeFile(named: "empty", size: 0) { _ in }
        let file = try #require(try client.file(named: "empty"))
        #expect(file.size == 0)
        #expect(try client.buffers(of: file, name: "empty").isEmpty)
    }

    @Test func chunkedFilesReferenceSealedBlobs() throws {
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        var chunks: [VineyardFile.Chunk] = []
        for (index, length) in [10, 1000, 7].enumerated() {
            let buffer = try client.createBuffer(size: length + 5)  // blobs may be larger than their use
            buffer.mutableBytes.initializeMemory(as: UInt8.self, repeating: UInt8(index + 1))
            try client.seal(buffer.id)
            chunks.append(VineyardFile.Chunk(blob: buffer.id, length: length, instanceID: client.server.instanceID))
        }
        try client.publishFile(named: "v/chunked", chunks: chunks)
        let file = try #require(try client.file(named: "v/chunked"))
        #expect(file.size == 1017)
        #expect(file.chunks == chunks)
        let bytes = try client.buffers(of: file, name: "v/chunked").flatMap { Array($0.bytes) }
        #expect(bytes == [UInt8](repeating: 1, count: 10) + [UInt8](repeating: 2, count: 1000) + [UInt8](repeating: 3, count: 7))
    }

    @Test func namesListAndDrop() throws {
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        for name in ["v1/a", "v1/b", "v2/a"] { try client.writeFile(named: name, size: 3) { $0.initializeMemory(as: UInt8.self, repeating: 1) } }
        #expect(try client.names(matching: "v1/*").map(\.name) == ["v1/a", "v1/b"])
        try client.dropName("v1/a")
        #expect(try client.object(named: "v1/a") == nil)
        #expect(try client.names(matching: "v1/*").map(\.name) == ["v1/b"])
    }

    @Test func unsealedBuffersAreNotReadableUntilSealed() throws {
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        let created = try client.createBuffer(size: 16)
        created.mutableBytes.initializeMemory(as: UInt8.self, repeating: 9)
        #expect(throws: VineyardClientError.self) { try client.buffers([created.id]) }
        #expect(client.isConnected, "an error reply keeps the connection")
        #expect(try client.buffers([created.id], unsafe: true)[created.id]?.bytes.count == 16)
        try client.seal(created.id)
        #expect(Array(try #require(try client.buffers([created.id])[created.id]).bytes) == [UInt8](repeating: 9, count: 16))
    }

    @Test func outOfMemoryIsENOSPC() throws {
        let server = try VineyarddProcess(size: "16Mi")
        let client = try VineyardClient.connect(socketPath: server.socket)
        defer { client.close() }
        do {
            _ = try client.createBuffer(size: 64 << 20)
            Issue.record("a 64 MiB buffer fit in a 16 MiB vineyardd")
        } catch {
            guard case .refused(let refusal) = error else { Issue.record("\(error)"); return }
            #expect(refusal.code == .notEnoughMemory)
            #expect(error.errno == .noSpace)
        }
        #expect(client.isConnected)
    }

    @Test func unreachableAndDisconnectedAreOutages() throws {
        do {
            _ = try VineyardClient.connect(socketPath: "/nonexistent/vineyard.sock")
            Issue.record("connected to nothing")
        } catch {
            #expect(error.isOutage)
            #expect(error.errno == .notConnected)
        }
        let server = try VineyarddProcess()
        let client = try VineyardClient.connect(socketPath: server.socket)
        try client.writeFile(named: "kept", size: 4) { $0.initializeMemory(as: UInt8.self, repeating: 2) }
        server.kill()
        do {
            _ = try client.instanceStatus()
            Issue.record("a killed vineyardd answered")
        } catch {
            #expect(error.isOutage)
            #expect(error.errno == .notConnected)
        }
        #expect(!client.isConnected, "a failed connection is never reused")
        #expect(throws: VineyardClientError.self) { try client.instanceStatus() }
    }
}
