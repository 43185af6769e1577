import CSIModel

/// Paths and ports the driver's pods agree on; each is written once, here.
enum DeployLayout {
    /// The directory holding the driver's socket inside every container of a pod.
    static let socketDirectory = "/csi"
    static let socketPath = "\(socketDirectory)/csi.sock"
    /// The driver's `--endpoint`.
    static let endpoint = "unix://\(socketPath)"

    /// kubelet's root directory on the host: pods' volume mounts and staging paths live below it.
    static let kubeletDirectory = "/var/lib/kubelet"
    /// Where the node plugin's socket lives on the host, so kubelet can reach it.
    static let pluginDirectory = "\(kubeletDirectory)/plugins/\(DriverInfo.name)/"
    /// Where node-driver-registrar announces the plugin to kubelet.
    static let registrationDirectory = "\(kubeletDirectory)/plugins_registry/"
    /// The driver's durable state on the host (`--state-dir`).
    static let stateDirectory = "/var/lib/vineyard-csi"
    /// The stores' shared memory on the host (`--store-dir`): a hostPath, so objects outlive
    /// a restart of the node plugin.
    static let storeDirectory = "/dev/shm/vineyard-csi"
    static let fuseDevice = "/dev/fuse"
    /// Where vineyard's operator puts its deployments' sockets on the host
    /// (`<root>/<namespace>/<name>/vineyard.sock`): the driver's `--backend auto` looks there.
    static let vineyardSocketRoot = BackendSelection.defaultSocketRoot
    /// The node plugin's `--handover-dir` on the host (tmpfs, emptied at reboot like the mounts
    /// it keeps alive): the descriptor holder's socket and the mounts' inode tables.
    static let handoverDirectory = "/run/vineyard-csi"
    static let holderSocket = "\(handoverDirectory)/fdholder.sock"
    /// Where deploy/Dockerfile installs the driver.
    static let driverBinary = "/usr/local/bin/vineyard-csi"
    /// Where deploy/Dockerfile installs the descriptor holder.
    static let holderBinary = "/usr/local/bin/vineyard-csi-fdholder"

    /// livenessprobe's port; the driver container's liveness probe calls it.
    static let healthPort = 9808
    /// node-driver-registrar's `/healthz`.
    static let registrarPort = 9809
    /// The node plugin's Prometheus endpoint (`--metrics-address`, `/metrics`; docs/metrics.md).
    static let metricsPort = 9810
    /// csi-resizer's diagnostics (`/healthz/leader-election`).
    static let resizerPort = 8080
    /// Where client-go finds the service account's token, CA and namespace.
    static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// Memory the node plugin needs besides its stores' shared memory.
    static let nodePluginOverheadBytes = 512 << 20
}
