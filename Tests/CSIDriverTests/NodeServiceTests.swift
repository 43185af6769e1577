import CSIDriver
import CSIProto
import Foundation
import GRPCTransport
import Logging
import Synchronization
import Testing

/// The node service's CSI logic: validation, error codes, idempotency, durable records and
/// recovery at start.
///
/// The volume host and the mounter are fakes (``FakeVolumeHost``, ``FakeMounter``): a kubelet
/// and real mounts cannot run in a unit test, and the logic is what is checked here. Records
/// are real files in a temporary directory. The real host and mounter are exercised end to end
/// by `Tests/e2e/test_node.py` and `test_restart.py`.
@Suite struct NodeServiceTests {
    static let cluster = ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample")

    /// A node service over fakes, with its state in `directory/state`.
    struct Harness {
        let directory: String
        let host: FakeVolumeHost
        let mounter: FakeMounter
        let node: NodeService

        init(
            directory: String, maxVolumes: Int = 0, host: FakeVolumeHost = FakeVolumeHost(),
            mounter: FakeMounter = FakeMounter(), ledger: (any VolumeCapacityLedger)? = nil
        ) throws {
            self.directory = directory
            self.host = host
            self.mounter = mounter
            node = try NodeService(
                configuration: NodeConfiguration(
                    nodeID: "node-a", stateDirectory: directory + "/state", maxVolumes: maxVolumes,
                    defaultCluster: NodeServiceTests.cluster),
                host: host, mounter: mounter, logger: Logger(label: "test"), capacityLedger: ledger)
        }

        /// The same state directory, host and mounter, as a restarted plugin sees them.
        func restarted() throws -> Harness {
            try Harness(directory: directory, host: host, mounter: mounter)
        }

        var staging: String { directory + "/staging/vol-1" }
        var target: String { directory + "/pods/p1/vol-1" }

        func stage(_ volumeID: String = "vol-1", at path: String? = nil, context: [String: String] = [:])
            async throws(RPCStatus)
        {
            var request = Csi_V1_NodeStageVolumeRequest()
            request.volumeID = volumeID
            request.stagingTargetPath = path ?? staging
            request.volumeCapability = mountCapability()
            request.volumeContext = context.merging([VolumeParameterKey.capacity: "\(1 << 20)"]) { mine, _ in mine }
            _ = try await node.nodeStageVolume(request)
        }

        func unstage(_ volumeID: String = "vol-1", at path: String? = nil) async throws(RPCStatus) {
            var request = Csi_V1_NodeUnstageVolumeRequest()
            request.volumeID = volumeID
            request.stagingTargetPath = path ?? staging
            _ = try await node.nodeUnstageVolume(request)
        }

        func publish(
            _ volumeID: String = "vol-1", at target: String? = nil, staging: String? = nil, readOnly: Bool = false,
            mountFlags: [String] = [], context: [String: String] = [:]
        ) async throws(RPCStatus) {
            var request = Csi_V1_NodePublishVolumeRequest()
            request.volumeID = volumeID
            request.targetPath = target ?? self.target
            request.stagingTargetPath = staging ?? self.staging
            var capability = mountCapability()
            capability.mount.mountFlags = mountFlags
            request.volumeCapability = capability
            request.readonly = readOnly
            // The same context as at staging, as the kubelet passes it.
            request.volumeContext = context.merging([VolumeParameterKey.capacity: "\(1 << 20)"]) { mine, _ in mine }
            _ = try await node.nodePublishVolume(request)
        }

        func publishEphemeral(_ volumeID: String, at target: String) async throws(RPCStatus) {
            var request = Csi_V1_NodePublishVolumeRequest()
            request.volumeID = volumeID
            request.targetPath = target
            request.volumeCapability = mountCapability()
            request.volumeContext = ["csi.storage.k8s.io/ephemeral": "true"]
            _ = try await node.nodePublishVolume(request)
        }

        func unpublish(_ volumeID: String = "vol-1", at target: String? = nil) async throws(RPCStatus) {
            var request = Csi_V1_NodeUnpublishVolumeRequest()
            request.volumeID = volumeID
            request.targetPath = target ?? self.target
            _ = try await node.nodeUnpublishVolume(request)
        }

        func stats(_ volumeID: String = "vol-1", at path: String) async throws(RPCStatus) -> Csi_V1_NodeGetVolumeStatsResponse {
            var request = Csi_V1_NodeGetVolumeStatsRequest()
            request.volumeID = volumeID
            request.volumePath = path
            return try await node.nodeGetVolumeStats(request)
        }

        func expand(_ volumeID: String = "vol-1", at path: String, to bytes: Int64) async throws(RPCStatus) -> Int64 {
            var request = Csi_V1_NodeExpandVolumeRequest()
            request.volumeID = volumeID
            request.volumePath = path
            request.capacityRange.requiredBytes = bytes
            return try await node.nodeExpandVolume(request).capacityBytes
        }
    }

    /// Runs `body` and returns the status code it failed with; records an issue when it succeeds.
    static func code(_ body: () async throws(RPCStatus) -> Void) async -> StatusCode? {
        do {
            try await body()
            Issue.record("expected the call to fail")
            return nil
        } catch {
            return error.code
        }
    }

    // MARK: - Identity of the node

    @Test func getInfoReportsNodeLimitAndTopology() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory, maxVolumes: 7)
            let info = try await harness.node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())
            #expect(info.nodeID == "node-a")
            #expect(info.maxVolumesPerNode == 7)
            #expect(info.accessibleTopology.segments[DriverInfo.nodeTopologyKey] == "node-a")
        }
    }

    @Test func getCapabilitiesListsWhatTheNodeServes() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            let response = try await harness.node.nodeGetCapabilities(Csi_V1_NodeGetCapabilitiesRequest())
            let kinds = Set(response.capabilities.map(\.rpc.type))
            #expect(kinds == [.stageUnstageVolume, .getVolumeStats, .volumeCondition, .singleNodeMultiWriter, .expandVolume])
        }
    }

    // MARK: - Stage

    @Test func stageRejectsMalformedRequests() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            func stage(_ edit: (inout Csi_V1_NodeStageVolumeRequest) -> Void) async -> StatusCode? {
                var request = Csi_V1_NodeStageVolumeRequest()
                request.volumeID = "vol-1"
                request.stagingTargetPath = harness.staging
                request.volumeCapability = mountCapability()
                edit(&request)
                return await Self.code { () async throws(RPCStatus) in _ = try await harness.node.nodeStageVolume(request) }
            }
            #expect(await stage { $0.volumeID = "" } == .invalidArgument)
            #expect(await stage { $0.volumeID = "../etc" } == .invalidArgument)
            #expect(await stage { $0.volumeID = ".hidden" } == .invalidArgument)
            #expect(await stage { $0.volumeID = String(repeating: "a", count: 129) } == .invalidArgument)
            #expect(await stage { $0.stagingTargetPath = "" } == .invalidArgument)
            #expect(await stage { $0.stagingTargetPath = "relative/path" } == .invalidArgument)
            #expect(await stage { $0.clearVolumeCapability() } == .invalidArgument)
            #expect(await stage { $0.volumeCapability.clearAccessMode() } == .invalidArgument)
            #expect(await stage { $0.volumeCapability.block = Csi_V1_VolumeCapability.BlockVolume() } == .invalidArgument)
            #expect(await stage { $0.volumeCapability.mount.fsType = "ext4" } == .invalidArgument)
            #expect(await stage { $0.volumeContext = [VolumeParameterKey.vineyardNamespace: "ns"] } == .invalidArgument)
            #expect(await stage { $0.volumeContext = [VolumeParameterKey.vineyardNamespace: "NS", VolumeParameterKey.vineyardName: "x"] } == .invalidArgument)
            #expect(await stage { $0.volumeContext = [VolumeParameterKey.backend: "nfs"] } == .invalidArgument)
            #expect(harness.host.state.withLock { $0.mountCalls.isEmpty })
        }
    }

    @Test func stageMountsOnceAndIsIdempotent() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.stage()
            let (calls, volume) = harness.host.state.withLock { ($0.mountCalls, $0.mounted[harness.staging]) }
            #expect(calls == [harness.staging])
            #expect(volume?.volumeID == "vol-1")
            #expect(volume?.cluster == Self.cluster)
            #expect(volume?.capacityBytes == 1 << 20)
            #expect(volume?.effectiveBackend == .embedded)
            #expect(FileManager.default.fileExists(atPath: harness.staging))
        }
    }

    @Test func stageAtAnotherPathOrWithAnotherClusterIsRefused() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.stage(at: directory + "/other") } == .failedPrecondition)
            let otherCluster = [VolumeParameterKey.vineyardNamespace: "team", VolumeParameterKey.vineyardName: "store"]
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.stage(context: otherCluster) } == .alreadyExists)
        }
    }

    @Test func stageServesAgainAVolumeWhoseSessionDied() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            harness.host.state.withLock { _ = $0.dead.insert(harness.staging) }
            harness.mounter.leave(harness.staging)
            try await harness.stage()
            #expect(harness.host.state.withLock { $0.mountCalls } == [harness.staging, harness.staging])
            #expect(harness.mounter.state.withLock { $0.unmounts } == [harness.staging], "the dead mount is detached first")
            #expect(harness.host.isServing(path: harness.staging))
        }
    }

    @Test func stageBeyondTheNodesLimitIsResourceExhausted() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory, maxVolumes: 1)
            try await harness.stage()
            #expect(
                await Self.code { () async throws(RPCStatus) in try await harness.stage("vol-2", at: directory + "/staging/vol-2") }
                    == .resourceExhausted)
        }
    }

    @Test func hostFailuresMapToCSICodes() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            let cases: [(VolumeHostError.Kind, StatusCode)] = [
                (.unavailable, .failedPrecondition), (.resourceExhausted, .resourceExhausted), (.failed, .internalError),
            ]
            for (kind, expected) in cases {
                harness.host.state.withLock { $0.nextMountFailure = VolumeHostError(kind, "injected") }
                #expect(await Self.code { () async throws(RPCStatus) in try await harness.stage() } == expected)
            }
            // Nothing was recorded: a later stage mounts normally.
            try await harness.stage()
            #expect(harness.host.isServing(path: harness.staging))
        }
    }

    @Test func stageChoosesTheBackendFromTheContext() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage(context: [VolumeParameterKey.backend: "vineyardd"])
            #expect(harness.host.state.withLock { $0.mounted[harness.staging]?.backend } == .vineyardd)
        }
    }

    // MARK: - Unstage

    @Test func unstageRejectsMalformedRequests() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.unstage("") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.unstage(at: "") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.unstage(at: "rel") } == .invalidArgument)
        }
    }

    @Test func unstageUnmountsAndIsIdempotent() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.unstage()
            try await harness.unstage()
            #expect(!harness.host.isServing(path: harness.staging))
            #expect(harness.host.state.withLock { $0.unmountCalls } == [harness.staging])
            // Staging again works, so the record is gone.
            try await harness.stage()
            #expect(harness.host.state.withLock { $0.mountCalls.count } == 2)
        }
    }

    @Test func unstageWhilePublishedIsRefused() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish()
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.unstage() } == .failedPrecondition)
            #expect(harness.host.isServing(path: harness.staging))
        }
    }

    // MARK: - Publish

    @Test func publishRejectsMalformedRequests() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish("") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish(at: "") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish(at: "pods/rel") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish(staging: "rel") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish(mountFlags: ["sync"]) } == .invalidArgument)
            #expect(harness.mounter.state.withLock { $0.binds.isEmpty })
        }
    }

    @Test func publishNeedsAStagedVolume() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            var request = Csi_V1_NodePublishVolumeRequest()
            request.volumeID = "vol-1"
            request.targetPath = harness.target
            request.volumeCapability = mountCapability()
            #expect(
                await Self.code { () async throws(RPCStatus) in _ = try await harness.node.nodePublishVolume(request) }
                    == .failedPrecondition, "no staging_target_path")
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish() } == .failedPrecondition)
        }
    }

    @Test func publishBindsTheStagingPathWithItsFlags() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish(readOnly: true, mountFlags: ["noexec", "rw"])
            try await harness.publish(readOnly: true, mountFlags: ["noexec", "rw"])
            let binds = harness.mounter.state.withLock { $0.binds }
            let flags: BindMountFlags = [.readOnly, .noExecute]
            #expect(binds == [FakeMounter.Bind(source: harness.staging, target: harness.target, flags: flags.rawValue)])
        }
    }

    @Test func publishWithOtherOptionsOrOnAnotherVolumesTargetIsAlreadyExists() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish()
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish(readOnly: true) } == .alreadyExists)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish(mountFlags: ["noatime"]) } == .alreadyExists)
            let other = directory + "/staging/vol-2"
            try await harness.stage("vol-2", at: other)
            #expect(
                await Self.code { () async throws(RPCStatus) in try await harness.publish("vol-2", staging: other) } == .alreadyExists)
        }
    }

    @Test func publishFailureOfTheBindMountIsInternalAndRecordsNothing() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            harness.mounter.state.withLock { $0.failBindMounts = true }
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.publish() } == .internalError)
            harness.mounter.state.withLock { $0.failBindMounts = false }
            try await harness.publish()
            #expect(harness.mounter.state.withLock { $0.binds.count } == 1)
        }
    }

    @Test func ephemeralVolumesAreServedAtTheirTargetAndPurgedAtUnpublish() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            let target = directory + "/pods/p2/inline"
            try await harness.publishEphemeral("csi-inline", at: target)
            try await harness.publishEphemeral("csi-inline", at: target)
            #expect(harness.host.state.withLock { $0.mountCalls } == [target])
            #expect(harness.host.state.withLock { $0.mounted[target]?.ephemeral } == true)
            #expect(
                await Self.code { () async throws(RPCStatus) in try await harness.publishEphemeral("csi-inline", at: directory + "/pods/p3/inline") }
                    == .alreadyExists)
            try await harness.unpublish("csi-inline", at: target)
            #expect(!harness.host.isServing(path: target))
            #expect(harness.host.state.withLock { $0.purged } == ["csi-inline"])
            #expect(!FileManager.default.fileExists(atPath: target), "the empty target directory is removed")
        }
    }

    // MARK: - Unpublish

    @Test func unpublishRemovesTheBindMountAndIsIdempotent() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish()
            try await harness.unpublish()
            try await harness.unpublish()
            #expect(harness.mounter.mount(at: harness.target) == nil)
            #expect(harness.mounter.state.withLock { $0.unmounts } == [harness.target])
            #expect(!FileManager.default.fileExists(atPath: harness.target))
            try await harness.unstage()
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.unpublish("") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in try await harness.unpublish(at: "") } == .invalidArgument)
        }
    }

    // MARK: - Stats

    @Test func statsReportUsageAndCondition() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish()
            let stats = try await harness.stats(at: harness.target)
            #expect(!stats.volumeCondition.abnormal)
            let bytes = stats.usage.first { $0.unit == .bytes }
            #expect(bytes?.total == 1 << 20)
            #expect(bytes?.used == 100)
            #expect(stats.usage.first { $0.unit == .inodes }?.used == 3)

            harness.host.state.withLock { _ = $0.dead.insert(harness.staging) }
            let dead = try await harness.stats(at: harness.staging)
            #expect(dead.volumeCondition.abnormal)
        }
    }

    @Test func statsOfUnknownVolumesOrPathsAreNotFound() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.stats(at: harness.staging) } == .notFound)
            try await harness.stage()
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.stats(at: directory + "/elsewhere") } == .notFound)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.stats(at: "relative") } == .notFound)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.stats(at: "") } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.stats("", at: harness.staging) } == .invalidArgument)
        }
    }

    // MARK: - Expand

    @Test func expandRaisesTheQuotaAndRecordsIt() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish()
            #expect(try await harness.expand(at: harness.target, to: 4 << 20) == 4 << 20)
            #expect(harness.host.state.withLock { $0.resized["vol-1"] } == 4 << 20)
            // Never shrinks: a smaller request answers the current capacity.
            #expect(try await harness.expand(at: harness.staging, to: 2 << 20) == 4 << 20)
            // A restart mounts it with the new quota.
            harness.host.state.withLock { $0.mounted = [:] }
            let restarted = try harness.restarted()
            await restarted.node.recover()
            #expect(harness.host.state.withLock { $0.mounted[harness.staging]?.capacityBytes } == 4 << 20)
        }
    }

    @Test func expandValidatesItsRequest() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.expand("", at: harness.staging, to: 1) } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.expand(at: "", to: 1) } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.expand(at: harness.staging, to: -1) } == .invalidArgument)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.expand(at: directory + "/x", to: 4 << 20) } == .notFound)
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.expand("vol-9", at: harness.staging, to: 4 << 20) } == .notFound)
        }
    }

    /// A ledger that refuses every expansion, as a controller whose store is full does.
    struct FullLedger: VolumeCapacityLedger {
        func recordExpansion(of volumeID: String, to capacityBytes: Int) throws(RPCStatus) -> Bool {
            throw RPCStatus(.resourceExhausted, "store is full")
        }
    }

    @Test func expandAsksTheLedgerFirst() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory, ledger: FullLedger())
            try await harness.stage()
            #expect(await Self.code { () async throws(RPCStatus) in _ = try await harness.expand(at: harness.staging, to: 4 << 20) } == .resourceExhausted)
            #expect(harness.host.state.withLock { $0.resized.isEmpty })
        }
    }

    // MARK: - Recovery

    @Test func recoveryRestagesAndRebindsRecordedVolumes() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish(readOnly: true)
            // The plugin dies: its sessions go, dead mounts stay in the table.
            harness.host.state.withLock { $0.mounted = [:] }
            harness.mounter.leave(harness.staging)
            let restarted = try harness.restarted()
            await restarted.node.recover()
            #expect(harness.host.isServing(path: harness.staging))
            let binds = harness.mounter.state.withLock { $0.binds }
            #expect(binds.count == 2)
            #expect(binds.last == FakeMounter.Bind(source: harness.staging, target: harness.target, flags: BindMountFlags.readOnly.rawValue))
            #expect(harness.mounter.state.withLock { $0.unmounts }.contains(harness.staging), "stale mounts are detached first")
            // The records survived: unpublish and unstage clean up.
            try await restarted.unpublish()
            try await restarted.unstage()
            #expect(!harness.host.isServing(path: harness.staging))
        }
    }

    @Test func recoveryResumesHandedOverMountsAsTheyAre() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            try await harness.publish()
            harness.host.state.withLock { state in
                state.mounted = [:]
                state.resumable[harness.staging] = "vol-1"
            }
            let restarted = try harness.restarted()
            await restarted.node.recover()
            #expect(harness.host.isServing(path: harness.staging))
            #expect(harness.host.state.withLock { $0.mountCalls.count } == 1, "resumed, not mounted again")
            #expect(harness.mounter.state.withLock { $0.binds.count } == 1, "the live bind mount is kept")
        }
    }

    @Test func recoveryKeepsRecordsOfVolumesItCannotServe() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let harness = try Harness(directory: directory)
            try await harness.stage()
            harness.host.state.withLock { state in
                state.mounted = [:]
                state.nextMountFailure = VolumeHostError(.unavailable, "no /dev/fuse")
            }
            let restarted = try harness.restarted()
            await restarted.node.recover()
            #expect(!harness.host.isServing(path: harness.staging))
            // The record is still there: staging again at the same path serves it.
            try await restarted.stage()
            #expect(harness.host.isServing(path: harness.staging))
            #expect(await Self.code { () async throws(RPCStatus) in try await restarted.stage(at: directory + "/other") } == .failedPrecondition)
        }
    }
}
