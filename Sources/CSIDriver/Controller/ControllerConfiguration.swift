/// Settings of the controller plugin.
public struct ControllerConfiguration: Sendable {
    /// This process's node id; always a known node for ControllerPublishVolume.
    public var nodeID: String
    /// Where volume records are kept (`<state-dir>/controller/volumes`).
    public var stateDirectory: String
    /// Capacity of one embedded store; the sum of the quotas of the volumes placed on one store
    /// (one cluster on one node) may not exceed it.
    public var storeCapacity: Int
    /// Size of a volume whose request names no capacity.
    public var defaultVolumeSize: Int
    /// Cluster for a volume whose StorageClass names none.
    public var defaultCluster: ClusterReference
    /// The controller runs on every node, beside that node's stores, with csi-provisioner and
    /// csi-snapshotter in `--node-deployment` mode: it places volumes on this node only, and
    /// leaves expansion to NodeExpandVolume (csi-resizer cannot run per node, so it must not
    /// call a controller that may not know the volume).
    public var nodeLocal: Bool
    /// How new volumes get their backend (overridden by the StorageClass parameter
    /// `k8s.v6d.io/vineyard/backend`).
    public var backendSelection: BackendSelection

    public init(
        nodeID: String,
        stateDirectory: String,
        storeCapacity: Int,
        defaultVolumeSize: Int,
        defaultCluster: ClusterReference,
        nodeLocal: Bool = false,
        backendSelection: BackendSelection = .embeddedOnly
    ) {
        self.backendSelection = backendSelection
        self.nodeID = nodeID
        self.stateDirectory = stateDirectory
        self.storeCapacity = storeCapacity
        self.defaultVolumeSize = defaultVolumeSize
        self.defaultCluster = defaultCluster
        self.nodeLocal = nodeLocal
    }
}
