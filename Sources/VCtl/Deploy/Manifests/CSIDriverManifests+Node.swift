import CSIModel

extension CSIDriverManifests {
    /// The driver on every node: `--mode all --node-deployment` (privileged, it mounts FUSE),
    /// node-driver-registrar, the API sidecars (``apiSidecars()``) and livenessprobe.
    ///
    /// Controller and node plugin share one process per node because a volume, its snapshots
    /// and its clones are objects in that node's store: only a controller beside the store can
    /// snapshot, clone, delete or size them.
    func node() -> Manifest {
        let component = "node"
        let socket = Self.volumeMount("socket-dir", DeployLayout.socketDirectory)
        let driver: YAMLValue = [
            "name": "vineyard-csi",
            "image": .string(installation.image),
            "imagePullPolicy": .string(installation.imagePullPolicy.rawValue),
            "command": [.string(DeployLayout.driverBinary)],
            "args": .sequence(
                driverArguments(mode: "all") + [
                    "--node-deployment", "--store-dir=\(DeployLayout.storeDirectory)",
                    "--handover-dir=\(DeployLayout.handoverDirectory)",
                    "--metrics-address=:\(DeployLayout.metricsPort)",
                ]),
            "env": [Self.fieldEnvironment("KUBE_NODE_NAME", "spec.nodeName")],
            "securityContext": .commented("mount(2), umount2(2) and /dev/fuse.", ["privileged": true]),
            "ports": [
                Self.port("healthz", DeployLayout.healthPort),
                .commented("Prometheus: GET /metrics (docs/metrics.md).", Self.port("metrics", DeployLayout.metricsPort)),
            ],
            "livenessProbe": Self.httpLivenessProbe(path: "/healthz", port: "healthz"),
            "volumeMounts": [
                socket,
                .commented(
                    "Staging and publish paths are below kubelet's directory; Bidirectional makes the\nFUSE mounts made here visible to kubelet and to pods.",
                    Self.volumeMount("kubelet-dir", DeployLayout.kubeletDirectory, propagation: "Bidirectional")
                ),
                Self.volumeMount("fuse-device", DeployLayout.fuseDevice),
                Self.volumeMount("store-dir", DeployLayout.storeDirectory),
                Self.volumeMount("state-dir", DeployLayout.stateDirectory),
                Self.volumeMount("handover-dir", DeployLayout.handoverDirectory),
                Self.volumeMount("vineyard-sockets", DeployLayout.vineyardSocketRoot),
            ],
            "resources": .commented(
                "The stores' shared memory is charged to this container: the memory limit is\n--store-size for each vineyard cluster plus \(DeployLayout.nodePluginOverheadBytes >> 20)Mi.",
                Self.resources(cpu: "50m", memory: "128Mi", cpuLimit: "2", memoryLimit: nodeMemoryLimit)
            ),
        ]
        let registrar: YAMLValue = [
            "name": "node-driver-registrar",
            "image": .string(installation.sidecars.nodeRegistrar),
            "imagePullPolicy": .string(installation.sidecarImagePullPolicy.rawValue),
            "args": [
                "--csi-address=\(DeployLayout.socketPath)",
                .commented(
                    "The socket's path on the host, where kubelet connects to it.",
                    "--kubelet-registration-path=\(DeployLayout.pluginDirectory)csi.sock"
                ),
                "--http-endpoint=:\(DeployLayout.registrarPort)",
                "--v=2",
            ],
            "ports": [Self.port("registrar", DeployLayout.registrarPort)],
            "livenessProbe": Self.httpLivenessProbe(path: "/healthz", port: "registrar"),
            "volumeMounts": [socket, Self.volumeMount("registration-dir", "/registration")],
            "resources": Self.resources(cpu: "5m", memory: "16Mi", cpuLimit: "100m", memoryLimit: "64Mi"),
            "securityContext": Self.unprivileged,
        ]
        return Manifest(
            .node, apiVersion: "apps/v1", kind: "DaemonSet", name: installation.objectName(component),
            namespace: installation.namespace, labels: labels(component),
            comment: "The driver on every node: creates, snapshots and expands volumes in the node's stores, and\nstages and publishes them as FUSE file systems.",
            fields: [
                "spec": [
                    "selector": ["matchLabels": selectorLabels(component)],
                    "updateStrategy": ["type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": 1]],
                    "template": [
                        "metadata": ["labels": labels(component)],
                        "spec": [
                            "serviceAccountName": .string(installation.objectName(component)),
                            "automountServiceAccountToken": .commented(
                                "Only the sidecars that call the API server get a token (the api-token volume).", false),
                            "nodeSelector": Self.podLinuxNodes,
                            "tolerations": installation.enableToleration
                                ? .commented("--enableToleration: run on every node, tainted or not.", [["operator": "Exists"]])
                                : .omitted,
                            "containers": .sequence([driver, registrar] + apiSidecars() + [livenessProbeContainer()]),
                            "volumes": [
                                .commented(
                                    "The plugin's socket, on the host so kubelet reaches it.",
                                    Self.hostPathVolume("socket-dir", DeployLayout.pluginDirectory, type: "DirectoryOrCreate")
                                ),
                                Self.hostPathVolume("registration-dir", DeployLayout.registrationDirectory, type: "Directory"),
                                Self.hostPathVolume("kubelet-dir", DeployLayout.kubeletDirectory, type: "Directory"),
                                Self.hostPathVolume("fuse-device", DeployLayout.fuseDevice, type: "CharDevice"),
                                Self.apiTokenVolume,
                                .commented(
                                    "The stores' shared memory, on the host's /dev/shm: objects survive a restart\nor upgrade of the node plugin (until the node reboots).",
                                    Self.hostPathVolume("store-dir", DeployLayout.storeDirectory, type: "DirectoryOrCreate")
                                ),
                                .commented(
                                    "Staged and published volumes (--state-dir), to recover them after a restart.",
                                    Self.hostPathVolume("state-dir", DeployLayout.stateDirectory, type: "DirectoryOrCreate")
                                ),
                                .commented(
                                    "--handover-dir: the descriptor holder's socket and the mounts' inode tables, so\nmounts outlive a restart, crash or upgrade of this pod (see the fdholder DaemonSet).",
                                    Self.hostPathVolume("handover-dir", DeployLayout.handoverDirectory, type: "DirectoryOrCreate")
                                ),
                                .commented(
                                    "Sockets of vineyard deployments on this node (vineyard's operator puts them here):\nvolumes of a cluster with one live in its vineyardd (cluster mode, --backend auto).",
                                    Self.hostPathVolume("vineyard-sockets", DeployLayout.vineyardSocketRoot, type: "DirectoryOrCreate")
                                ),
                            ],
                        ],
                    ],
                ]
            ]
        )
    }

    /// The node plugin's memory limit: every store's shared memory plus the process itself.
    var nodeMemoryLimit: String {
        let storeBytes = ByteCount.parse(installation.storeSize) ?? 0
        let total = storeBytes * installation.clusters.count + DeployLayout.nodePluginOverheadBytes
        let mebibytes = (total + (1 << 20) - 1) >> 20
        return ByteCount.format(mebibytes << 20)
    }
}
