// vineyard-csi: VineyardIPCTests
// CodecTests.swift: framing and the typed requests and replies, against captured wire text.

import SharedMemoryStore
import Testing

@testable import VineyardIPC
@testable import VineyardSocket

@Suite struct CodecTests {
    @Test func framesCarryALittleEndianLength() throws {
        let frame = IPCFrame.encode(["type": "exit_request"])
        #expect(Array(frame.prefix(8)) == [23, 0, 0, 0, 0, 0, 0, 0])
        #expect(String(decoding: frame.dropFirst(8), as: UTF8.self) == #"{"type":"exit_request"}"#)
        #expect(IPCFrame.length(header: frame.prefix(8)) == 23)
        #expect(IPCFrame.length(header: [0, 0, 0, 0, 0, 0, 0, 1]) == 1 << 56)
    }

    @Test func parsesTheCapturedRegisterRequest() throws {
        // Captured from vineyard 0.24.2's Python client.
        let text = #"{"password":"","session_id":0,"store_type":1,"type":"register_request","username":"","version":"0.24.2"}"#
        let request = try IPCRequest(json: try JSONValue(parsing: text))
        #expect(request == .register(version: "0.24.2", storeType: 1, sessionID: 0))
        #expect(try IPCRequest(json: ["type": "register_request"]) == .register(version: "0.0.0", storeType: 1, sessionID: 0))
        #expect(try IPCRequest(json: ["type": "register_request", "store_type": "Plasma"]) == .register(version: "0.0.0", storeType: 2, sessionID: 0))
    }

    @Test func keepsBlobIDsExact() throws {
        // Blob ids are at or above 2^63: through a Double they would be corrupted.
        let text = #"{"0":16753960362562289664,"num":1,"type":"get_buffers_request","unsafe":false}"#
        let request = try IPCRequest(json: try JSONValue(parsing: text))
        #expect(request == .getBuffers(ids: [ObjectID(16_753_960_362_562_289_664)], unsafe: false))
        let alternate = try IPCRequest(json: try JSONValue(parsing: #"{"ids":[9223372036854775808],"type":"get_buffers_request"}"#))
        #expect(alternate == .getBuffers(ids: [.emptyBlob], unsafe: false))
    }

    @Test func everyModelledRequestRoundTrips() throws {
        let requests: [IPCRequest] = [
            .register(version: "0.24.2", storeType: 1, sessionID: 0), .createBuffer(size: 48),
            .createBuffers(sizes: [8, 0]), .seal(ObjectID(1 << 63 | 5)), .getBuffers(ids: [ObjectID(1 << 63 | 9)], unsafe: true),
            .dropBuffer(ObjectID(3)), .shrinkBuffer(ObjectID(3), size: 2), .createData(content: ["typename": "t", "instance_id": 0]),
            .getData(ids: [ObjectID(7)], wait: false), .listData(IPCPattern(pattern: "vineyard::*", isRegex: false, limit: 10)),
            .delData(IPCDeletion(ids: [ObjectID(7)], deep: true, force: false, wantsFeedback: false)),
            .delData(IPCDeletion(ids: [ObjectID(7)], deep: false, force: true, wantsFeedback: true)),
            .exists(ObjectID(7)), .persist(ObjectID(7)), .ifPersist(ObjectID(7)), .putName("a/b", ObjectID(7)),
            .getName("n", wait: true), .dropName("n"), .listName(IPCPattern(pattern: "a.*", isRegex: true, limit: 3)),
            .release(ObjectID(7)), .increaseReferenceCount([ObjectID(7)]), .clusterMeta, .instanceStatus, .clear, .exit,
            .delData(IPCDeletion(ids: [ObjectID(7)], deep: true, force: false, wantsFeedback: false, memoryTrim: true)),
            .migrateObject(ObjectID(7)), .memoryTrim, .stream(.create(ObjectID(7))), .stream(.open(ObjectID(7), mode: 2)),
            .stream(.nextChunk(ObjectID(7), size: 64)), .stream(.push(ObjectID(7), chunk: ObjectID(8))),
            .stream(.pull(ObjectID(7))), .stream(.stop(ObjectID(7), failed: true)), .stream(.drop(ObjectID(7))),
            .unsupported(type: "shallow_copy_request"),
        ]
        for request in requests {
            let text = request.json.serialized()
            #expect(try IPCRequest(json: try JSONValue(parsing: text)) == request, "\(text)")
        }
    }

    @Test func malformedRequestsNameTheField() {
        func failure(_ json: JSONValue) -> IPCError? {
            do {
                _ = try IPCRequest(json: json)
                return nil
            } catch {
                return error
            }
        }
        #expect(failure([1, 2])?.message == "a message must be a JSON object")
        #expect(failure(["size": 3])?.message == "the message has no string \"type\"")
        #expect(failure(["type": "create_buffer_request", "size": -1])?.code == .invalid)
        #expect(failure(["type": "create_buffer_request", "size": "x"])?.message.contains("\"size\"") == true)
        #expect(failure(["type": "seal_request", "object_id": -5])?.message.contains("object_id") == true)
        #expect(failure(["type": "get_buffers_request", "num": 2, "0": 1])?.message.contains("\"1\"") == true)
        #expect(failure(["type": "get_buffers_request", "num": .int(1 << 40)]) != nil)
        #expect(failure(["type": "create_data_request", "content": "x"]) != nil)
    }

    @Test func repliesHaveTheFieldsTheClientReads() throws {
        let payload = IPCPayload(
            objectID: ObjectID(16_753_960_362_562_289_664), storeFD: 8, dataOffset: 64, dataSize: 48,
            mapSize: 1_073_741_832, isSealed: false)
        let created = IPCReply.createBuffer(payload, fd: 8).json
        #expect(created["type"] == "create_buffer_reply")
        #expect(created["id"]?.uint64Value == 16_753_960_362_562_289_664)
        #expect(created["fd"] == 8)
        #expect(try IPCPayload(json: created["created"]!) == payload)
        #expect(IPCReply.createBuffer(payload, fd: 8).descriptors == [8])
        #expect(IPCReply.createBuffer(payload, fd: -1).descriptors == [])

        let buffers = IPCReply.getBuffers([payload], fds: []).json
        #expect(buffers["num"] == 1 && buffers["0"] == payload.json && buffers["payloads"] == [payload.json])
        #expect(buffers["fds"] == [] && buffers["compress"] == false)

        #expect(IPCReply.getData([:]).json == ["type": "get_data_reply", "content": nil])
        let register = IPCReply.register(IPCServerInfo(instanceID: 0, ipcSocket: "/s"), sessionID: 0, storeMatch: true).json
        for key in ["instance_id", "ipc_socket", "rpc_endpoint", "session_id", "version", "store_match"] {
            #expect(register[key] != nil, "\(key)")
        }
        let names = IPCReply.listName([(name: "a", id: ObjectID(5))]).json
        #expect(names == ["type": "list_name_reply", "names": ["a": 5], "size": 1])
        #expect(IPCReply.delData(deletedBlobs: [ObjectID(1 << 63 | 1)]).json["type"] == "del_data_with_feedbacks_reply")
    }

    @Test func errorFramesRoundTrip() {
        let error = IPCError(.objectNotExists, "failed to find name: nope")
        #expect(error.json.serialized() == #"{"code":12,"message":"failed to find name: nope"}"#)
        #expect(IPCError(reply: error.json) == error)
        #expect(IPCError(reply: ["type": "seal_reply"]) == nil)
        #expect(IPCError(.outOfMemory(requested: 10, available: 2)).code == .notEnoughMemory)
    }

    @Test func scopeMapsClientNamesToVolumePaths() {
        let scope = VolumeScope(
            volumeID: "vol-1", namePrefix: "vol-1/", ownerKey: "owner", mountSource: "vineyard:vol-1",
            reservedPaths: ["vineyard.sock"])
        let mounts = [
            ClientMounts.Mount(mountPoint: "/data/v", root: ""),
            ClientMounts.Mount(mountPoint: "/data/v/sub", root: "inner/dir"),
        ]
        #expect(scope.path(forClientName: "x_train", mounts: mounts) == "x_train")
        #expect(scope.path(forClientName: "/data/v/x_train", mounts: mounts) == "x_train")
        #expect(scope.path(forClientName: "/data/v/sub/y", mounts: mounts) == "inner/dir/y")
        #expect(scope.path(forClientName: "/vineyard/z", mounts: mounts) == "z")  // the fallback mount point
        #expect(scope.path(forClientName: "/elsewhere/z", mounts: mounts) == "elsewhere/z")
        #expect(scope.path(forClientName: "vineyard.sock", mounts: []) == nil)
        #expect(scope.path(forClientName: "dir/", mounts: []) == nil)
        #expect(scope.path(forClientName: "", mounts: []) == nil)
        #expect(scope.storeName(forPath: "a/b") == "vol-1/a/b")
        #expect(scope.path(forStoreName: "vol-1/a/b") == "a/b")
        #expect(scope.path(forStoreName: "vol-1/a/") == nil)
        #expect(scope.path(forStoreName: "vol-2/a") == nil)
        #expect(scope.path(forStoreName: "vol-1/vineyard.sock") == nil)
    }

    @Test func mountinfoParsing() {
        let table = """
            44 27 0:40 / /tmp/stage rw,nosuid - fuse.vineyard vineyard:vol-1 rw,user_id=0
            45 44 254:0 /x/s.sock /tmp/stage/vineyard.sock rw - ext4 /dev/vda rw
            46 27 0:40 /sub /pods/with\\040space ro,nosuid shared:5 - fuse.vineyard vineyard:vol-1 rw
            47 27 0:41 / /pods/other rw - fuse.vineyard vineyard:vol-2 rw
            """
        #expect(
            ClientMounts.mounts(mountinfo: table, source: "vineyard:vol-1") == [
                ClientMounts.Mount(mountPoint: "/tmp/stage", root: ""),
                ClientMounts.Mount(mountPoint: "/pods/with space", root: "sub", readOnly: true),
            ])
        #expect(ClientMounts.mounts(pid: 0, source: "vineyard:vol-1").isEmpty)
    }
}
