/// Settings of the node plugin.
public struct NodeConfiguration: Sendable {
    /// The id this node reports in NodeGetInfo; the kubelet passes it on to the controller.
    public var nodeID: String
    /// Where the node's durable state is kept (`<state-dir>/node`).
    public var stateDirectory: String
    /// How many volumes this node stages at once (NodeGetInfo `max_volumes_per_node`, 0 = no limit).
    public var maxVolumes: Int
    /// Cluster for volumes whose context names none (ephemeral volumes without attributes).
    public var defaultCluster: ClusterReference
    /// The backend of volumes whose context names none (ephemeral volumes, volumes created
    /// before cluster mode).
    public var backendSelection: BackendSelection

    public init(
        nodeID: String, stateDirectory: String, maxVolumes: Int, defaultCluster: ClusterReference,
        backendSelection: BackendSelection = .embeddedOnly
    ) {
        self.nodeID = nodeID
        self.stateDirectory = stateDirectory
        self.maxVolumes = maxVolumes
        self.defaultCluster = defaultCluster
        self.backendSelection = backendSelection
    }
}
