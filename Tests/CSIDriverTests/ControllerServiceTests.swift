import CSIDriver
import CSIProto
import Foundation
import GRPCTransport
import Logging
import SwiftProtobuf
import Testing

/// The controller through the in-process router: the same bytes a socket would carry, no socket.
@Suite struct ControllerServiceTests {
    static let gib: Int64 = 1 << 30

    struct Harness {
        let router: CSIRouter
        let controller: ControllerService

        init(directory: String, storeCapacity: Int = 4 << 30) throws {
            let logger = Logger(label: "test")
            controller = try ControllerService(
                configuration: ControllerConfiguration(
                    nodeID: "node-a",
                    stateDirectory: directory,
                    storeCapacity: storeCapacity,
                    defaultVolumeSize: 1 << 30,
                    defaultCluster: ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample")
                ),
                logger: logger
            )
            router = CSIRouter(
                identity: IdentityService(isReady: { true }), controller: controller, node: nil, logger: logger,
                verbose: false)
        }

        func call<Response: SwiftProtobuf.Message>(
            _ method: String, _ request: some SwiftProtobuf.Message, as: Response.Type = Response.self
        ) async throws -> Result<Response, RPCStatus> {
            let result = await router.handle(UnaryRequest(method: method, payload: try request.serializedBytes(), deadline: nil))
            switch result {
            case .success(let bytes): return .success(try Response(serializedBytes: bytes))
            case .failure(let status): return .failure(status)
            }
        }

        func create(_ name: String, size: Int64 = 0, parameters: [String: String] = [:]) async throws
            -> Result<Csi_V1_CreateVolumeResponse, RPCStatus>
        {
            var request = Csi_V1_CreateVolumeRequest()
            request.name = name
            request.volumeCapabilities = [mountCapability()]
            request.parameters = parameters
            if size > 0 { request.capacityRange.requiredBytes = size }
            return try await call("/csi.v1.Controller/CreateVolume", request)
        }
    }

    @Test func createIsIdempotentAndSurvivesReload() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            let first = try await harness.create("pvc-1", size: Self.gib).get()
            let again = try await harness.create("pvc-1", size: Self.gib).get()
            #expect(first == again)
            #expect(first.volume.capacityBytes == Self.gib)
            let reloaded = try Harness(directory: directory)
            #expect(try await reloaded.create("pvc-1", size: Self.gib).get() == first)
            #expect(reloaded.controller.volume(id: first.volume.volumeID)?.name == "pvc-1")
        }
    }

    @Test func incompatibleRepeatIsAlreadyExists() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            _ = try await harness.create("pvc-1", size: Self.gib).get()
            let result = try await harness.create("pvc-1", size: 2 * Self.gib)
            #expect(result.failure?.code == .alreadyExists)
        }
    }

    @Test func quotaOfOneStoreIsEnforced() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory, storeCapacity: 3 << 30)
            _ = try await harness.create("a", size: 2 * Self.gib).get()
            #expect(try await harness.create("b", size: 2 * Self.gib).failure?.code == .resourceExhausted)
            #expect(try await harness.create("c", size: 4 * Self.gib).failure?.code == .outOfRange)
            let other = ["k8s.v6d.io/vineyard/namespace": "ns", "k8s.v6d.io/vineyard/name": "other"]
            _ = try await harness.create("d", size: 2 * Self.gib, parameters: other).get()
        }
    }

    @Test func concurrentCreatesOfOneNameYieldOneVolume() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<32 {
                    group.addTask { try await harness.create("same").get().volume.volumeID }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            let listed: Csi_V1_ListVolumesResponse = try await harness.call(
                "/csi.v1.Controller/ListVolumes", Csi_V1_ListVolumesRequest()).get()
            #expect(listed.entries.count == 1)
        }
    }

    @Test func malformedBytesAreInvalidArgument() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            let result = await harness.router.handle(
                UnaryRequest(method: "/csi.v1.Controller/CreateVolume", payload: [0x0F, 0xFF, 0xFF], deadline: nil))
            #expect(result.failure?.code == .invalidArgument)
        }
    }

    @Test func unknownAndUnsupportedMethodsAreUnimplemented() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            for method in ["/csi.v1.Controller/CreateSnapshot", "/csi.v1.Node/NodeGetInfo", "/x.Y/Z"] {
                let result = await harness.router.handle(UnaryRequest(method: method, payload: [], deadline: nil))
                #expect(result.failure?.code == .unimplemented, "\(method)")
            }
        }
    }

    @Test func paginationTokensAreIDsAndBadTokensAbort() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            var ids: [String] = []
            for index in 0..<5 { ids.append(try await harness.create("v\(index)", size: 1 << 20).get().volume.volumeID) }
            var request = Csi_V1_ListVolumesRequest()
            request.maxEntries = 2
            var seen: [String] = []
            repeat {
                let page: Csi_V1_ListVolumesResponse = try await harness.call("/csi.v1.Controller/ListVolumes", request).get()
                seen += page.entries.map(\.volume.volumeID)
                request.startingToken = page.nextToken
            } while !request.startingToken.isEmpty
            #expect(seen == ids.sorted())
            request.startingToken = "not-a-token"
            let aborted: Result<Csi_V1_ListVolumesResponse, RPCStatus> = try await harness.call(
                "/csi.v1.Controller/ListVolumes", request)
            #expect(aborted.failure?.code == .aborted)
        }
    }
}

func mountCapability(_ mode: Csi_V1_VolumeCapability.AccessMode.Mode = .singleNodeWriter) -> Csi_V1_VolumeCapability {
    var capability = Csi_V1_VolumeCapability()
    capability.mount = Csi_V1_VolumeCapability.MountVolume()
    capability.accessMode.mode = mode
    return capability
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}

func withTemporaryDirectoryAsync<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = NSTemporaryDirectory() + "vineyard-csi-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}
