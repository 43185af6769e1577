import FoundationEssentials
import Glibc
public import CSIProto
public import GRPCTransport
public import Logging
import Synchronization
import SwiftProtobuf

/// The CSI Controller service: creates, deletes, publishes and lists volumes.
///
/// Every change is written to durable state before it is answered, under one lock, so
/// concurrent calls for one name yield one volume and a crash never loses an answered change.
public final class ControllerService: CSIControllerService {
    struct State {
        var volumes: [String: VolumeRecord] = [:]
        var volumeIDsByName: [String: String] = [:]
        var snapshots: [String: SnapshotRecord] = [:]
        var snapshotIDsByName: [String: String] = [:]
    }

    let configuration: ControllerConfiguration
    private let records: DurableRecordStore<VolumeRecord>
    let snapshotRecords: DurableRecordStore<SnapshotRecord>
    /// The stores' name trees, when this process runs beside them; snapshots and clones need it.
    let content: (any VolumeContentStore)?
    /// The trees of volumes in vineyard deployments' vineyardds (cluster mode).
    let vineyarddContent: (any VolumeContentStore)?
    let state: Mutex<State>
    let logger: Logger

    /// Loads the controller's durable state.
    ///
    /// - Parameters:
    ///   - content: the volumes' trees in the store, or `nil` when the controller runs apart
    ///     from the store (it then offers no snapshots or clones).
    ///   - vineyarddContent: the trees of volumes in vineyardds, which DeleteVolume removes.
    /// - Throws: ``StateError`` naming the file when the state is unreadable or corrupt.
    public init(
        configuration: ControllerConfiguration, content: (any VolumeContentStore)? = nil,
        vineyarddContent: (any VolumeContentStore)? = nil, logger: Logger
    ) throws(StateError) {
        let (records, loaded) = try DurableRecordStore<VolumeRecord>.open(
            directory: "\(configuration.stateDirectory)/volumes"
        )
        let (snapshotRecords, loadedSnapshots) = try DurableRecordStore<SnapshotRecord>.open(
            directory: "\(configuration.stateDirectory)/snapshots"
        )
        var initial = State()
        for record in loaded {
            initial.volumes[record.id] = record
            initial.volumeIDsByName[record.name] = record.id
        }
        for record in loadedSnapshots {
            initial.snapshots[record.id] = record
            initial.snapshotIDsByName[record.name] = record.id
        }
        self.configuration = configuration
        self.records = records
        self.snapshotRecords = snapshotRecords
        self.content = content
        self.vineyarddContent = vineyarddContent
        self.state = Mutex(initial)
        self.logger = logger
        logger.info(
            "controller state loaded",
            metadata: ["volumes": "\(loaded.count)", "snapshots": "\(loadedSnapshots.count)"])
        removeOrphanSnapshotTrees()
    }

    /// Removes snapshot trees that no snapshot record names: a crash between CreateSnapshot's
    /// copy of the names and its record leaves one, holding objects nothing else may free.
    ///
    /// Only snapshot trees: snapshots exist only where the controller runs beside the store, so
    /// their records are always here. Volume trees may belong to records of a controller in
    /// another process (a node-only plugin) and are never collected.
    private func removeOrphanSnapshotTrees() {
        guard let content else { return }
        let known = state.withLock { Set($0.snapshots.keys) }
        for tree in content.trees(withIDPrefix: SnapshotRecord.idPrefix)
        where SnapshotRecord.isWellFormedID(tree.id) && !known.contains(tree.id) {
            do {
                try content.remove(treeOf: tree.id, cluster: tree.cluster)
                logger.warning(
                    "removed a snapshot tree no record names (left by a crash during CreateSnapshot)",
                    metadata: ["snapshot": "\(tree.id)", "cluster": "\(tree.cluster)"])
            } catch {
                logger.error(
                    "cannot remove an orphan snapshot tree",
                    metadata: ["snapshot": "\(tree.id)", "cluster": "\(tree.cluster)", "error": "\(error)"])
            }
        }
    }

    /// The volume with `id`, for tests and tools.
    public func volume(id: String) -> VolumeRecord? {
        state.withLock { $0.volumes[id] }
    }

    // MARK: - CreateVolume / DeleteVolume

    public func createVolume(_ request: Csi_V1_CreateVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_CreateVolumeResponse
    {
        guard !request.name.isEmpty else { throw .missing("name") }
        try VolumeCapabilityRules.requireWellFormed(request.volumeCapabilities, field: "volume_capabilities")
        try VolumeCapabilityRules.requireSupported(request.volumeCapabilities)
        let source = try requestedSource(request)
        let cluster = try StorageClassParameters.cluster(from: request.parameters, default: configuration.defaultCluster)
        let capacity = try CapacityRequest(request.hasCapacityRange ? request.capacityRange : nil)
        var size = capacity.resolvedSize(defaultSize: configuration.defaultVolumeSize)
        if let source {
            // A restored or cloned volume holds at least what its source could hold.
            size = max(size, source.capacityBytes)
            guard capacity.accepts(size) else {
                throw RPCStatus(
                    .outOfRange,
                    "the \(source.description) needs \(source.capacityBytes) bytes, more than capacity_range allows")
            }
            guard source.cluster == cluster else {
                throw .invalid(
                    "the \(source.description) lives in vineyard cluster \(source.cluster), not \(cluster): objects cannot cross stores")
            }
        }
        guard size <= configuration.storeCapacity else {
            throw RPCStatus(
                .outOfRange,
                "capacity \(size) bytes exceeds the capacity of a vineyard store (\(configuration.storeCapacity) bytes)"
            )
        }
        let backend = configuration.backendSelection.choose(
            for: cluster, requested: try StorageClassParameters.backend(from: request.parameters))
        let requirement = request.hasAccessibilityRequirements ? request.accessibilityRequirements : nil
        // A node-local controller places embedded volumes in its own node's store.
        var node = try configuration.nodeLocal && backend == .embedded
            ? Self.requireThisNode(requirement, nodeID: configuration.nodeID) : Self.selectNode(requirement)
        if let source { node = source.node }  // the shared objects are in that node's store
        if backend == .vineyardd {
            // Snapshots and clones share objects of the embedded store's name trees.
            if source != nil {
                throw .invalid("volume_content_source needs the embedded backend; vineyard cluster \(cluster) uses its vineyardd")
            }
            node = nil  // the deployment's vineyardd serves every node: the volume is not pinned
        }

        let record = try state.withLock { state throws(RPCStatus) -> VolumeRecord in
            if let existingID = state.volumeIDsByName[request.name], let existing = state.volumes[existingID] {
                guard capacity.accepts(existing.capacityBytes) else {
                    throw .alreadyExists(
                        "volume \"\(request.name)\" exists with capacity \(existing.capacityBytes) bytes, "
                            + "outside the requested capacity_range"
                    )
                }
                guard existing.parameters == request.parameters else {
                    throw .alreadyExists("volume \"\(request.name)\" exists with different parameters")
                }
                guard existing.contentSource == source?.reference else {
                    throw .alreadyExists("volume \"\(request.name)\" exists with a different volume_content_source")
                }
                return existing
            }
            let used = Self.provisionedBytes(state, cluster: cluster, node: node)
            guard used + size <= configuration.storeCapacity else {
                throw RPCStatus(
                    .resourceExhausted,
                    "store of vineyard cluster \(cluster) on \(node.map { "node \($0)" } ?? "unpinned volumes") "
                        + "has \(configuration.storeCapacity - used) of \(configuration.storeCapacity) bytes unprovisioned; "
                        + "\(size) requested"
                )
            }
            let record = VolumeRecord(
                id: VolumeRecord.newID(),
                name: request.name,
                capacityBytes: size,
                cluster: cluster,
                parameters: request.parameters,
                node: node,
                publishedNodes: [:],
                createdAt: Date(),
                contentSource: source?.reference,
                backend: backend
            )
            if let source { try populate(record, from: source) }
            do throws(RPCStatus) {
                try persist(record)
            } catch {
                if source != nil { try? content?.remove(treeOf: record.id, cluster: record.cluster) }
                throw error
            }
            state.volumes[record.id] = record
            state.volumeIDsByName[record.name] = record.id
            logger.info(
                "created volume",
                metadata: [
                    "volume": "\(record.id)", "cluster": "\(cluster)", "backend": "\(backend)", "node": "\(node ?? "any")",
                ])
            return record
        }
        var response = Csi_V1_CreateVolumeResponse()
        response.volume = Self.csiVolume(record)
        return response
    }

    public func deleteVolume(_ request: Csi_V1_DeleteVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_DeleteVolumeResponse
    {
        guard !request.volumeID.isEmpty else { throw .missing("volume_id") }
        try state.withLock { state throws(RPCStatus) in
            guard let record = state.volumes[request.volumeID] else { return }
            guard record.publishedNodes.isEmpty else {
                throw .failedPrecondition(
                    "volume \(record.id) is still published to node(s) \(record.publishedNodes.keys.sorted().joined(separator: ", "))"
                )
            }
            if record.backend == .vineyardd, let vineyarddContent {
                do {
                    try vineyarddContent.remove(treeOf: record.id, cluster: record.cluster)
                } catch {
                    throw RPCStatus(.unavailable, "cannot delete the objects of volume \(record.id): \(error)")
                }
            } else if record.backend != .vineyardd, let content {
                // Objects a snapshot or clone still names stay in the store.
                do {
                    try content.remove(treeOf: record.id, cluster: record.cluster)
                } catch {
                    throw .internalError("cannot delete the objects of volume \(record.id): \(error)")
                }
            }
            do {
                try records.remove(key: record.id)
            } catch {
                throw .internalError("cannot record deletion of volume \(record.id): \(error)")
            }
            state.volumes[record.id] = nil
            state.volumeIDsByName[record.name] = nil
        }
        return Csi_V1_DeleteVolumeResponse()
    }

    // MARK: - ControllerPublishVolume / ControllerUnpublishVolume

    public func controllerPublishVolume(_ request: Csi_V1_ControllerPublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerPublishVolumeResponse
    {
        guard !request.volumeID.isEmpty else { throw .missing("volume_id") }
        guard !request.nodeID.isEmpty else { throw .missing("node_id") }
        guard request.hasVolumeCapability else { throw .missing("volume_capability") }
        try VolumeCapabilityRules.requireWellFormed(request.volumeCapability, field: "volume_capability")
        try state.withLock { state throws(RPCStatus) in
            guard var record = state.volumes[request.volumeID] else {
                throw .notFound("volume \(request.volumeID) does not exist")
            }
            guard Self.isKnownNode(request.nodeID, state, configuration) else {
                throw .notFound("node \(request.nodeID) is not known to \(DriverInfo.name)")
            }
            if let reason = VolumeCapabilityRules.unsupportedReason(request.volumeCapability) {
                throw .invalid(reason)
            }
            if let pinned = record.node, pinned != request.nodeID {
                throw .failedPrecondition(
                    "volume \(record.id) lives in the embedded store of node \(pinned) and cannot be published to \(request.nodeID)"
                )
            }
            if let readonly = record.publishedNodes[request.nodeID] {
                guard readonly == request.readonly else {
                    throw .alreadyExists(
                        "volume \(record.id) is already published to node \(request.nodeID) with readonly=\(readonly)"
                    )
                }
                return
            }
            if VolumeCapabilityRules.isSingleNode(request.volumeCapability.accessMode.mode),
                let other = record.publishedNodes.keys.first
            {
                throw .failedPrecondition(
                    "volume \(record.id) has a single-node access mode and is already published to node \(other)"
                )
            }
            record.publishedNodes[request.nodeID] = request.readonly
            try persist(record)
            state.volumes[record.id] = record
        }
        return Csi_V1_ControllerPublishVolumeResponse()
    }

    public func controllerUnpublishVolume(_ request: Csi_V1_ControllerUnpublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerUnpublishVolumeResponse
    {
        guard !request.volumeID.isEmpty else { throw .missing("volume_id") }
        try state.withLock { state throws(RPCStatus) in
            // A volume or node we do not know is, by definition, not published there: the spec
            // asks for OK so that a CO retrying after a lost answer converges.
            guard var record = state.volumes[request.volumeID] else { return }
            if request.nodeID.isEmpty {
                guard !record.publishedNodes.isEmpty else { return }
                record.publishedNodes = [:]
            } else {
                guard record.publishedNodes[request.nodeID] != nil else { return }
                record.publishedNodes[request.nodeID] = nil
            }
            try persist(record)
            state.volumes[record.id] = record
        }
        return Csi_V1_ControllerUnpublishVolumeResponse()
    }

    // MARK: - Queries

    public func validateVolumeCapabilities(_ request: Csi_V1_ValidateVolumeCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_ValidateVolumeCapabilitiesResponse
    {
        guard !request.volumeID.isEmpty else { throw .missing("volume_id") }
        try VolumeCapabilityRules.requireWellFormed(request.volumeCapabilities, field: "volume_capabilities")
        guard let record = volume(id: request.volumeID) else {
            throw .notFound("volume \(request.volumeID) does not exist")
        }
        var response = Csi_V1_ValidateVolumeCapabilitiesResponse()
        if let reason = request.volumeCapabilities.lazy.compactMap(VolumeCapabilityRules.unsupportedReason).first {
            response.message = reason
        } else if !request.parameters.isEmpty && request.parameters != record.parameters {
            response.message = "parameters differ from those volume \(record.id) was created with"
        } else {
            var confirmed = Csi_V1_ValidateVolumeCapabilitiesResponse.Confirmed()
            confirmed.volumeContext = request.volumeContext
            confirmed.volumeCapabilities = request.volumeCapabilities
            confirmed.parameters = request.parameters
            response.confirmed = confirmed
        }
        return response
    }

    public func listVolumes(_ request: Csi_V1_ListVolumesRequest) async throws(RPCStatus) -> Csi_V1_ListVolumesResponse {
        guard request.maxEntries >= 0 else { throw .invalid("max_entries must not be negative (got \(request.maxEntries))") }
        // The token is the id of the first volume of the next page; ids sort stably, so a page
        // boundary survives volumes being created or deleted between calls.
        if !request.startingToken.isEmpty && !VolumeRecord.isWellFormedID(request.startingToken) {
            throw RPCStatus(.aborted, "starting_token \"\(request.startingToken)\" was not issued by this driver")
        }
        let all = state.withLock { state in state.volumes.values.sorted { $0.id < $1.id } }
        let start = request.startingToken.isEmpty ? 0 : (all.firstIndex { $0.id >= request.startingToken } ?? all.count)
        let pageSize = request.maxEntries == 0 ? all.count : Int(request.maxEntries)
        let end = min(all.count, start + pageSize)
        var response = Csi_V1_ListVolumesResponse()
        response.entries = all[start..<end].map { record in
            var entry = Csi_V1_ListVolumesResponse.Entry()
            entry.volume = Self.csiVolume(record)
            entry.status.publishedNodeIds = record.publishedNodes.keys.sorted()
            entry.status.volumeCondition = Self.condition(record)
            return entry
        }
        if end < all.count { response.nextToken = all[end].id }
        return response
    }

    public func getCapacity(_ request: Csi_V1_GetCapacityRequest) async throws(RPCStatus) -> Csi_V1_GetCapacityResponse {
        var response = Csi_V1_GetCapacityResponse()
        if request.volumeCapabilities.contains(where: { VolumeCapabilityRules.unsupportedReason($0) != nil }) {
            return response  // nothing can be provisioned with capabilities we do not serve
        }
        let cluster = try StorageClassParameters.cluster(from: request.parameters, default: configuration.defaultCluster)
        let node = request.hasAccessibleTopology ? request.accessibleTopology.segments[DriverInfo.nodeTopologyKey] : nil
        let used = state.withLock { Self.provisionedBytes($0, cluster: cluster, node: node) }
        let available = Int64(max(0, configuration.storeCapacity - used))
        response.availableCapacity = available
        response.maximumVolumeSize.value = available
        return response
    }

    public func controllerGetCapabilities(_ request: Csi_V1_ControllerGetCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerGetCapabilitiesResponse
    {
        var supported: [Csi_V1_ControllerServiceCapability.RPC.TypeEnum] = [
            .createDeleteVolume, .publishUnpublishVolume, .listVolumes, .getCapacity, .publishReadonly,
            .listVolumesPublishedNodes, .volumeCondition, .getVolume, .singleNodeMultiWriter,
        ]
        // A node-local controller expands at NodeExpandVolume; see ControllerConfiguration.nodeLocal.
        if !configuration.nodeLocal { supported.append(.expandVolume) }
        // GetSnapshot is served but GET_SNAPSHOT (alpha) not advertised: csi-sanity, up to
        // v5.4.0, fails every driver that reports a capability it does not know, and
        // csi-snapshotter reads one snapshot with ListSnapshots' snapshot_id filter instead.
        if content != nil { supported += [.createDeleteSnapshot, .listSnapshots, .cloneVolume] }
        var response = Csi_V1_ControllerGetCapabilitiesResponse()
        response.capabilities = supported.map { kind in
            var rpc = Csi_V1_ControllerServiceCapability.RPC()
            rpc.type = kind
            var capability = Csi_V1_ControllerServiceCapability()
            capability.rpc = rpc
            return capability
        }
        return response
    }

    public func controllerGetVolume(_ request: Csi_V1_ControllerGetVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerGetVolumeResponse
    {
        guard !request.volumeID.isEmpty else { throw .missing("volume_id") }
        guard let record = volume(id: request.volumeID) else {
            throw .notFound("volume \(request.volumeID) does not exist")
        }
        var response = Csi_V1_ControllerGetVolumeResponse()
        response.volume = Self.csiVolume(record)
        response.status.publishedNodeIds = record.publishedNodes.keys.sorted()
        response.status.volumeCondition = Self.condition(record)
        return response
    }

    // MARK: - Helpers

    func persist(_ record: VolumeRecord) throws(RPCStatus) {
        do {
            try records.save(record)
        } catch {
            logger.error("cannot persist volume", metadata: ["volume": "\(record.id)", "error": "\(error)"])
            throw .internalError("cannot persist volume \(record.id): \(error)")
        }
    }

    /// Picks the node a new volume is pinned to: the first preferred, else requisite, segment
    /// that names one of our nodes. No requirements means an unpinned volume.
    static func selectNode(_ requirement: Csi_V1_TopologyRequirement?) throws(RPCStatus) -> String? {
        guard let requirement else { return nil }
        let candidates = requirement.preferred + requirement.requisite
        guard !candidates.isEmpty else { return nil }
        for segment in candidates {
            if let node = segment.segments[DriverInfo.nodeTopologyKey], !node.isEmpty { return node }
        }
        throw RPCStatus(
            .resourceExhausted,
            "accessibility_requirements name no topology segment with key \(DriverInfo.nodeTopologyKey); "
                + "volumes can only be placed on nodes that run the \(DriverInfo.name) node plugin"
        )
    }

    /// A node-local controller's placement: this node, when the requirements allow it.
    static func requireThisNode(_ requirement: Csi_V1_TopologyRequirement?, nodeID: String) throws(RPCStatus) -> String {
        guard let requirement, !(requirement.preferred + requirement.requisite).isEmpty else { return nodeID }
        let allowed = (requirement.preferred + requirement.requisite).contains {
            $0.segments[DriverInfo.nodeTopologyKey] == nodeID
        }
        guard allowed else {
            throw RPCStatus(
                .resourceExhausted,
                "this controller runs beside node \(nodeID)'s store and places volumes there only; "
                    + "accessibility_requirements do not include it")
        }
        return nodeID
    }

    private static func provisionedBytes(_ state: State, cluster: ClusterReference, node: String?) -> Int {
        state.volumes.values.reduce(0) { sum, record in
            record.cluster == cluster && record.node == node ? sum + record.capacityBytes : sum
        }
    }

    private static func isKnownNode(_ node: String, _ state: State, _ configuration: ControllerConfiguration) -> Bool {
        node == configuration.nodeID
            || state.volumes.values.contains { $0.node == node || $0.publishedNodes[node] != nil }
    }

    static func csiVolume(_ record: VolumeRecord) -> Csi_V1_Volume {
        var volume = Csi_V1_Volume()
        volume.volumeID = record.id
        volume.capacityBytes = Int64(record.capacityBytes)
        volume.volumeContext = [
            VolumeParameterKey.vineyardNamespace: record.cluster.namespace,
            VolumeParameterKey.vineyardName: record.cluster.name,
            VolumeParameterKey.backend: (record.backend ?? .embedded).rawValue,
            VolumeParameterKey.capacity: "\(record.capacityBytes)",
        ]
        if let node = record.node, record.backend != .vineyardd {
            var topology = Csi_V1_Topology()
            topology.segments = [DriverInfo.nodeTopologyKey: node]
            volume.accessibleTopology = [topology]
        }
        switch record.contentSource {
        case .snapshot(let id)?: volume.contentSource.snapshot.snapshotID = id
        case .volume(let id)?: volume.contentSource.volume.volumeID = id
        case nil: break
        }
        return volume
    }

    private static func condition(_ record: VolumeRecord) -> Csi_V1_VolumeCondition {
        var condition = Csi_V1_VolumeCondition()
        condition.abnormal = false
        condition.message = "volume record is intact"
        return condition
    }
}
