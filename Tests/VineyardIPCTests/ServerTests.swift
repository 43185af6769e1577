// vineyard-csi: VineyardIPCTests
// ServerTests.swift: the socket server over a real Unix socket and a real store.

import Foundation
import Glibc
import SharedMemoryStore
import StoreBackend
import POSIXCore
import Testing

@testable import VineyardIPC
@testable import VineyardSocket

/// A store in a fresh /dev/shm directory with one socket server per volume, torn down after.
final class ServerFixture {
    let directory: String
    let store: ObjectStore
    var servers: [String: VineyardSocketServer] = [:]

    init() throws {
        var template = Array("/dev/shm/ipc-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw IPCSocketError("mkdtemp", errno: .current) }
        directory = String(cString: created)
        var configuration = StoreConfiguration(directory: directory + "/store", capacity: 256 << 20)
        configuration.bootID = "test"
        store = try ObjectStore.open(configuration)
    }

    deinit {
        for server in servers.values { server.stop() }
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    func serve(_ volume: String) throws -> String {
        let path = "\(directory)/\(volume).sock"
        let scope = VolumeScope(
            volumeID: volume, namePrefix: volume + "/", ownerKey: "vcsi_volume", mountSource: "vineyard:" + volume,
            reservedPaths: ["vineyard.sock"])
        servers[volume] = try VineyardSocketServer(backend: EmbeddedBackend(store: store), scope: scope, socketPath: path)
        return path
    }

    /// A registered client channel.
    func connect(_ volume: String) throws -> IPCChannel {
        let channel = try IPCChannel.connect(path: "\(directory)/\(volume).sock")
        let reply = try channel.call(.register(version: "0.24.2", storeType: 1, sessionID: 0)).get()
        #expect(reply["type"] == "register_reply")
        return channel
    }

    /// Waits (briefly) until `condition` holds: connection threads release asynchronously.
    func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// Maps a received store descriptor like vineyard's client: `map_size - 8` bytes from 0.
func mapStore(_ fd: Int32, mapSize: Int, writable: Bool) -> UnsafeMutableRawPointer? {
    let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
    guard let base = mmap(nil, mapSize - 8, protection, MAP_SHARED, fd, 0), base != MAP_FAILED else { return nil }
    return base
}

@Suite(.serialized) struct ServerTests {
    @Test func putAndGetThroughTheSocketIsZeroCopy() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        let writer = try fixture.connect("vol-a")
        let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }

        let created = try writer.call(.createBuffer(size: bytes.count)).get()
        let payload = try IPCPayload(json: created["created"]!)
        #expect(payload.dataSize == bytes.count && payload.dataOffset % 64 == 0)
        #expect(created["fd"]?.int64Value == Int64(payload.storeFD))
        let fd = try writer.receiveDescriptor()
        defer { close(fd) }
        let mapping = try #require(mapStore(fd, mapSize: payload.mapSize, writable: true))
        bytes.withUnsafeBytes { (mapping + payload.dataOffset).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        munmap(mapping, payload.mapSize - 8)
        _ = try writer.call(.seal(payload.objectID)).get()

        let tree: JSONValue = [
            "typename": "vineyard::Tensor<uint8>", "instance_id": 0, "nbytes": 4096, "transient": true,
            "shape_": "[4096]", "value_type_": "uint8", "value_type_meta_": "|u1",
            "buffer_": ["id": .string(payload.objectID.description), "typename": "vineyard::Blob", "instance_id": 0],
        ]
        let data = try writer.call(.createData(content: tree)).get()
        let tensorID = ObjectID(try #require(data["id"]?.uint64Value))
        #expect(!tensorID.isBlob && data["signature"] != nil && data["instance_id"] == 0)
        #expect(throws: IPCError.self, "transient objects cannot be named") { try writer.call(.putName("t", tensorID)).get() }
        _ = try writer.call(.persist(tensorID)).get()
        _ = try writer.call(.putName("dir/t", tensorID)).get()
        #expect(fixture.store.name("vol-a/dir/t") == tensorID)

        let reader = try fixture.connect("vol-a")
        let named = try reader.call(.getName("dir/t", wait: false)).get()
        #expect(named["object_id"]?.uint64Value == tensorID.rawValue)
        let content = try reader.call(.getData(ids: [tensorID], wait: false)).get()["content"]!
        let meta = try ObjectMeta(json: try #require(content[tensorID.description]))
        #expect(meta.isTransient == false && meta.fields["shape_"] == "[4096]")
        let blobs = meta.blobIDs
        #expect(blobs == [payload.objectID])
        let buffers = try reader.call(.getBuffers(ids: blobs, unsafe: false)).get()
        #expect(buffers["fds"] == [JSONValue(integer: Int(payload.storeFD))], "a new connection gets the descriptor")
        let got = try IPCPayload(json: try #require(buffers["payloads"]?.arrayValue?.first))
        let readFD = try reader.receiveDescriptor()
        defer { close(readFD) }
        let view = try #require(mapStore(readFD, mapSize: got.mapSize, writable: false))
        defer { munmap(view, got.mapSize - 8) }
        #expect(Array(UnsafeRawBufferPointer(start: view + got.dataOffset, count: got.dataSize)) == bytes)
        // Zero copy: the payload points at the very bytes the store serves.
        let handle = try #require(fixture.store.object(payload.objectID))
        #expect(handle.fileOffset == got.dataOffset && handle.size == got.dataSize)
        handle.release()
        // The descriptor is sent once per connection.
        #expect(try reader.call(.getBuffers(ids: blobs, unsafe: false)).get()["fds"] == [])
    }

    @Test func protocolErrorsAnswerAndKeepTheConnection() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        let channel = try IPCChannel.connect(path: "\(fixture.directory)/vol-a.sock")
        #expect(throws: IPCError.self) { try channel.call(.getName("x", wait: false)).get() }
        _ = try channel.call(.register(version: "0.24.2", storeType: 1, sessionID: 0)).get()
        func code(_ request: IPCRequest) throws -> IPCStatusCode? {
            switch try channel.call(request) {
            case .success: return nil
            case .failure(let error): return error.code
            }
        }
        #expect(try code(.unsupported(type: "no_such_request")) == .invalid)
        #expect(try code(.unsupported(type: "shallow_copy_request")) == .notImplemented)
        #expect(try code(.getName("missing", wait: false)) == .objectNotExists)
        #expect(try code(.persist(ObjectID(1 << 63 | 3))) == .assertionFailed)
        #expect(try code(.persist(ObjectID(3))) == .metaTreeSubtreeNotExists)
        #expect(try code(.createData(content: ["instance_id": 0])) == .metaTreeInvalid)
        #expect(try code(.createData(content: ["typename": "x"])) == .assertionFailed)
        #expect(try code(.createBuffer(size: 1 << 40)) == .notEnoughMemory)
        #expect(try code(.seal(ObjectID(1 << 63 | 77))) == .objectNotExists)
        #expect(try code(.listName(IPCPattern(pattern: "(", isRegex: true, limit: 3))) == .invalid)
        try channel.sendRaw(IPCFrame.header(length: 5) + Array("{bad}".utf8))
        let body = try #require(try channel.receiveBody())
        #expect(IPCError(reply: try IPCFrame.decode(body: body))?.code == .invalid)
        #expect(try code(.exists(ObjectID(5))) == nil)
        try channel.send(IPCRequest.exit.json)
        #expect(try channel.receiveBody() == nil, "exit closes the connection without a reply")
    }

    @Test func oversizedFramesDropOnlyThatConnection() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        let hostile = try fixture.connect("vol-a")
        try hostile.sendRaw(IPCFrame.header(length: 1 << 40))
        let body = try hostile.receiveBody()
        #expect(body.map { IPCError(reply: (try? IPCFrame.decode(body: $0)) ?? nil)?.code } == .invalid)
        #expect(throws: IPCChannelError.self) {
            _ = try hostile.call(.instanceStatus).get()
            _ = try hostile.call(.instanceStatus).get()
        }
        let half = try fixture.connect("vol-a")
        try half.sendRaw(IPCFrame.header(length: 100) + Array(#"{"type":"#.utf8))
        half.close()
        let fine = try fixture.connect("vol-a")
        #expect(try fine.call(.instanceStatus).get()["type"] == "instance_status_reply")
    }

    @Test func connectionsReleaseWhatTheyHeld() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        let before = fixture.store.usage
        let client = try fixture.connect("vol-a")
        _ = try client.call(.createBuffer(size: 8 << 20)).get()
        close(try client.receiveDescriptor())
        #expect(fixture.store.usage.unsealedCount == before.unsealedCount + 1)
        client.close()
        #expect(fixture.eventually { fixture.store.usage.unsealedCount == before.unsealedCount })
        #expect(fixture.eventually { fixture.store.usage.bytesUsed == before.bytesUsed })

        // A reader keeps a deleted blob's memory until it disconnects.
        let writer = try fixture.connect("vol-a")
        let created = try IPCPayload(json: try writer.call(.createBuffer(size: 4 << 20)).get()["created"]!)
        close(try writer.receiveDescriptor())
        _ = try writer.call(.seal(created.objectID)).get()
        let reader = try fixture.connect("vol-a")
        _ = try reader.call(.getBuffers(ids: [created.objectID], unsafe: false)).get()
        close(try reader.receiveDescriptor())
        _ = try writer.call(.delData(IPCDeletion(ids: [created.objectID], deep: true, force: false, wantsFeedback: false))).get()
        #expect(try writer.call(.exists(created.objectID)).get()["exists"] == false)
        #expect(fixture.store.usage.bytesUsed >= before.bytesUsed + (4 << 20), "the reader's memory is kept")
        reader.close()
        #expect(fixture.eventually { fixture.store.usage.bytesUsed == before.bytesUsed })
    }

    @Test func volumesSeeOnlyTheirOwnObjectsAndNames() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        try fixture.serve("vol-b")
        let a = try fixture.connect("vol-a")
        let b = try fixture.connect("vol-b")
        let tree: JSONValue = ["typename": "vineyard::Scalar<int>", "instance_id": 0, "value_": 42, "type_": "int"]
        let id = ObjectID(try #require(try a.call(.createData(content: tree)).get()["id"]?.uint64Value))
        _ = try a.call(.persist(id)).get()
        _ = try a.call(.putName("answer", id)).get()
        #expect(try b.call(.getData(ids: [id], wait: false)).get()["content"] == .null)
        #expect(try b.call(.exists(id)).get()["exists"] == false)
        #expect(throws: IPCError.self) { try b.call(.getName("answer", wait: false)).get() }
        #expect(throws: IPCError.self) { try b.call(.putName("mine", id)).get() }
        #expect(try b.call(.listName(IPCPattern(pattern: "*", isRegex: false, limit: 100))).get()["size"] == 0)
        #expect(try b.call(.listData(IPCPattern(pattern: "*", isRegex: false, limit: 100))).get()["content"] == .null)
        _ = try b.call(.delData(IPCDeletion(ids: [id], deep: true, force: true, wantsFeedback: false))).get()
        #expect(try a.call(.exists(id)).get()["exists"] == true)
        let names = try a.call(.listName(IPCPattern(pattern: "*", isRegex: false, limit: 100))).get()
        #expect(names["names"] == ["answer": JSONValue(integer: id.rawValue)])
    }

    @Test func waitingForANameEndsWhenItAppearsOrTheClientLeaves() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        let waiter = try fixture.connect("vol-a")
        let tree: JSONValue = ["typename": "vineyard::Scalar<int>", "instance_id": 0, "value_": 1]
        let id = ObjectID(try #require(try fixture.connect("vol-a").call(.createData(content: tree)).get()["id"]?.uint64Value))
        try fixture.store.persist(id)
        let store = fixture.store
        let namer = Thread {
            usleep(200_000)
            _ = try? store.putName("vol-a/late", id)
        }
        namer.start()
        let reply = try waiter.call(.getName("late", wait: true)).get()
        #expect(reply["object_id"]?.uint64Value == id.rawValue)

        let leaver = try fixture.connect("vol-a")
        try leaver.send(IPCRequest.getName("never", wait: true).json)
        leaver.close()
        #expect(fixture.eventually { fixture.servers["vol-a"]!.connectionCount == 1 })
    }

    @Test func stopClosesConnectionsAndRemovesTheSocket() throws {
        let fixture = try ServerFixture()
        let path = try fixture.serve("vol-a")
        let clients = try (0..<8).map { _ in try fixture.connect("vol-a") }
        #expect(fixture.servers["vol-a"]!.connectionCount == 8)
        #expect(fixture.servers["vol-a"]!.stop(timeoutSeconds: 5))
        #expect(access(path, F_OK) != 0)
        for client in clients { #expect(try client.receiveBody() == nil) }
        #expect(throws: IPCSocketError.self) { try IPCChannel.connect(path: path) }
    }
}
