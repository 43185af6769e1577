// vineyard-csi: VineyardIPCTests
// ProxySessionTests.swift: a volume socket relaying to a real vineyardd, within the volume's scope.

import Foundation
import Glibc
import SharedMemoryStore
import StoreBackend
import Testing
import VineyarddTestSupport

@testable import VineyardIPC
@testable import VineyardSocket

@Suite(
    "Volume socket relayed to vineyardd", .serialized,
    .enabled(if: VineyarddProcess.available, "vineyardd not installed (run scripts/install-deps.sh)"))
struct ProxySessionTests {
    /// A volume socket for `volumeID` relaying to `server`, bound in the server's directory.
    private static func volumeSocket(_ volumeID: String, _ server: VineyarddProcess) throws -> VineyardSocketServer {
        let scope = VolumeScope(
            volumeID: volumeID, namePrefix: volumeID + "/", ownerKey: "vcsi_volume", mountSource: "vineyard:" + volumeID,
            reservedPaths: ["vineyard.sock"])
        return try VineyardSocketServer(
            backend: VineyarddBackend(socketPath: server.socket), scope: scope,
            socketPath: "\(server.directory)/\(volumeID).sock")
    }

    @Test func objectsGoToVineyarddUnderTheVolumesNamesAndAreMappedDirectly() throws {
        let server = try VineyarddProcess()
        let volume = try Self.volumeSocket("vol-a", server)
        defer { volume.stop() }
        let client = try VineyardClient.connect(socketPath: volume.socketPath)
        defer { client.close() }
        let direct = try VineyardClient.connect(socketPath: server.socket)
        defer { direct.close() }
        #expect(client.server.instanceID == direct.server.instanceID)
        #expect(client.server.ipcSocket == volume.socketPath)

        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let object = try client.writeFile(named: "dir/a.bin", size: payload.count) { bytes in
            payload.withUnsafeBytes { bytes.copyMemory(from: $0) }
        }
        #expect(try direct.object(named: "vol-a/dir/a.bin") == object)
        #expect(try direct.meta(object)?["vcsi_volume"]?.stringValue == "vol-a")
        // The client wrote into vineyardd's memory through the descriptor the socket passed on:
        // vineyardd's own client reads the same bytes.
        let file = try #require(try direct.file(named: "vol-a/dir/a.bin"))
        #expect(Array(try #require(try direct.buffers(of: file, name: "x").first).bytes) == payload)
        // And the other way round, through the volume socket.
        let back = try #require(try client.file(named: "dir/a.bin"))
        let mapped = try #require(try client.buffers(of: back, name: "dir/a.bin").first)
        #expect(Array(mapped.bytes) == payload)
        #expect(try client.names(matching: "*").map(\.name) == ["dir/a.bin"])
        // Unsealed blobs of a connection that goes away are dropped.
        let before = try direct.instanceStatus()["memory_usage"]?.int64Value ?? 0
        let leaving = try VineyardClient.connect(socketPath: volume.socketPath)
        _ = try leaving.createBuffer(size: 8 << 20)
        leaving.close()
        var after = Int64.max
        for _ in 0..<200 where after > before {
            usleep(20_000)
            after = try direct.instanceStatus()["memory_usage"]?.int64Value ?? 0
        }
        #expect(after <= before)
    }

    @Test func aVolumeSeesNothingOfAnother() throws {
        let server = try VineyarddProcess()
        let volumeA = try Self.volumeSocket("vol-a", server)
        defer { volumeA.stop() }
        let volumeB = try Self.volumeSocket("vol-b", server)
        defer { volumeB.stop() }
        let a = try VineyardClient.connect(socketPath: volumeA.socketPath)
        defer { a.close() }
        let b = try VineyardClient.connect(socketPath: volumeB.socketPath)
        defer { b.close() }
        let object = try a.writeFile(named: "secret", size: 10) { $0.initializeMemory(as: UInt8.self, repeating: 7) }
        let blob = try #require(try a.file(named: "secret")?.chunks.first?.blob)

        #expect(try b.object(named: "secret") == nil)
        #expect(try b.meta(object) == nil)
        #expect(try b.exists(object) == false)
        #expect(try b.buffers([blob]).isEmpty)
        #expect(try b.names(matching: "*").isEmpty)
        try b.delete([object])
        #expect(try a.exists(object))
        #expect(throws: VineyardClientError.self) { try b.putName("stolen", object) }
        // An object of b's that refers to a's blob would hand out a's bytes: refused.
        let tree: JSONValue = [
            "typename": "vineyard::Tensor<uint8>", "instance_id": JSONValue(integer: b.server.instanceID),
            "buffer_": ["id": .string(blob.description), "typename": "vineyard::Blob", "instance_id": JSONValue(integer: b.server.instanceID)],
        ]
        #expect {
            try b.createData(tree)
        } throws: { error in
            guard case .refused(let refusal) = error as? VineyardClientError else { return false }
            return refusal.code == .objectNotExists
        }
        // Names outside the volume's prefix are out of reach too.
        let direct = try VineyardClient.connect(socketPath: server.socket)
        defer { direct.close() }
        try direct.writeFile(named: "elsewhere", size: 1) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
        #expect(try a.object(named: "elsewhere") == nil)
        #expect(try a.object(named: "../elsewhere") == nil)
    }

    @Test func vineyarddGoingAwayIsAnErrorNotACrash() throws {
        let server = try VineyarddProcess()
        let volume = try Self.volumeSocket("vol-a", server)
        defer { volume.stop() }
        let client = try VineyardClient.connect(socketPath: volume.socketPath)
        defer { client.close() }
        try client.writeFile(named: "f", size: 4) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
        server.kill()
        #expect {
            _ = try client.object(named: "f")
        } throws: { error in
            guard case .refused(let refusal) = error as? VineyardClientError else { return false }
            return refusal.code == .ioError
        }
        // New clients are told why at registration; the socket itself keeps serving.
        #expect {
            _ = try VineyardClient.connect(socketPath: volume.socketPath)
        } throws: { error in
            guard case .refused(let refusal) = error as? VineyardClientError else { return false }
            return refusal.code == .ioError && refusal.message.contains("does not answer")
        }
        #expect(volume.connectionCount >= 1)
    }
}
