/// Names and versions the driver reports about itself.
public enum DriverInfo {
    /// The CSI driver name registered with Kubernetes (`CSIDriver.metadata.name`).
    public static let name = "csi.vineyard.v6d.io"

    /// The package version, reported as `vendor_version` by `GetPluginInfo`.
    public static let version = "0.1.0"

    /// Topology key that pins a volume on an embedded store to the node holding it.
    public static let nodeTopologyKey = "topology.csi.vineyard.v6d.io/node"

    /// The well-known Kubernetes hostname label, also reported by `NodeGetInfo`.
    public static let hostnameTopologyKey = "kubernetes.io/hostname"
}

/// StorageClass parameter and volume-context keys.
public enum VolumeParameterKey {
    /// Namespace of the vineyard cluster the volume's objects live in.
    public static let vineyardNamespace = "k8s.v6d.io/vineyard/namespace"
    /// Name of the vineyard cluster the volume's objects live in.
    public static let vineyardName = "k8s.v6d.io/vineyard/name"
    /// Which backend serves the volume: in the volume context `embedded` or `vineyardd`; as a
    /// StorageClass parameter also `auto` (see ``BackendSelection``).
    public static let backend = "k8s.v6d.io/vineyard/backend"
    /// The volume's quota in bytes, so the node plugin can enforce it; volume context only.
    public static let capacity = "k8s.v6d.io/vineyard/capacity"
    /// Prefix of the keys external-provisioner adds with `--extra-create-metadata`, and of
    /// the pod-info keys kubelet adds to the volume context when `podInfoOnMount` is set.
    public static let kubernetesReservedPrefix = "csi.storage.k8s.io/"
}
