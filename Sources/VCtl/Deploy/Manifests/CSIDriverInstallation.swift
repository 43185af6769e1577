import ArgumentParser
import CSIModel

/// One installation of the driver on a Kubernetes cluster: everything the manifests depend on.
///
/// The defaults are what `deploy/` is rendered with, so the checked-in files and
/// `vctl deploy csidriver` agree unless a flag says otherwise.
struct CSIDriverInstallation: Equatable, Sendable {
    /// Prefix of every namespaced object and cluster role (`<name>-node`, `<name>-provisioner`, ...).
    var name = Self.defaultName
    /// Namespace of the driver's DaemonSets and their service account.
    var namespace = Self.defaultNamespace
    /// Vineyard clusters that get a StorageClass each; the first is the driver's default cluster.
    var clusters: [ClusterReference]
    /// Name of the StorageClass when there is one cluster; nil names it `<namespace>.<name>.csi`.
    var storageClassName: String?
    var volumeBindingMode = VolumeBindingMode.waitForFirstConsumer
    var image = Self.defaultImage
    var imagePullPolicy = PullPolicy.ifNotPresent
    var sidecars = SidecarImages()
    var sidecarImagePullPolicy = PullPolicy.ifNotPresent
    /// Let the node plugin run on tainted nodes (it tolerates every taint).
    var enableToleration = false
    /// Pass `--verbose` to the driver (every CSI call logged).
    var verbose = false
    /// Size of each embedded store: one per vineyard cluster per node (`--store-size`).
    var storeSize = Self.defaultStoreSize

    static let defaultName = "vineyard-csi-driver"
    static let defaultNamespace = "vineyard-system"
    static let defaultImage = "vineyardcloudnative/vineyard-csi:\(DriverInfo.version)"
    static let defaultStoreSize = "4Gi"
    /// The cluster `deploy/` is rendered for: vineyardctl's default vineyardd deployment.
    static let defaultCluster = ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample")

    /// The StorageClass each cluster gets.
    var storageClasses: [(name: String, cluster: ClusterReference)] {
        clusters.map { cluster in (storageClassName ?? cluster.storageClassName, cluster) }
    }

    /// Name of a namespaced object or cluster role of this installation.
    func objectName(_ suffix: String) -> String { "\(name)-\(suffix)" }
}

/// The images of the Kubernetes CSI sidecars; the versions csi-driver-host-path deploys.
struct SidecarImages: Equatable, Sendable {
    var provisioner = "registry.k8s.io/sig-storage/csi-provisioner:v6.3.0"
    var snapshotter = "registry.k8s.io/sig-storage/csi-snapshotter:v8.5.0"
    var resizer = "registry.k8s.io/sig-storage/csi-resizer:v2.1.0"
    var nodeRegistrar = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0"
    var livenessProbe = "registry.k8s.io/sig-storage/livenessprobe:v2.19.0"
}

/// `StorageClass.volumeBindingMode`.
enum VolumeBindingMode: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Provision once a pod is scheduled, on that pod's node: the default, because a volume's
    /// data lives in one node's store.
    case waitForFirstConsumer = "WaitForFirstConsumer"
    /// Provision at once, on a node csi-provisioner picks.
    case immediate = "Immediate"

    /// Why the mode places volumes where it does; written above it in the StorageClass.
    var explanation: String {
        switch self {
        case .waitForFirstConsumer:
            "A volume is created on the node of the first pod that uses it: its data lives in that\nnode's store."
        case .immediate:
            "A volume is created at once on a node csi-provisioner picks; pods using it are\nscheduled to that node, because its data lives in that node's store."
        }
    }
}

/// `Container.imagePullPolicy`.
enum PullPolicy: String, CaseIterable, ExpressibleByArgument, Sendable {
    case always = "Always"
    case ifNotPresent = "IfNotPresent"
    case never = "Never"
}
