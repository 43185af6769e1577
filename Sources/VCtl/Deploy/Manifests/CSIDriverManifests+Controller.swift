extension CSIDriverManifests {
    /// The controller plugin: the driver in `--mode controller` with csi-provisioner,
    /// csi-attacher and livenessprobe, all on one socket in an emptyDir.
    func controller() -> Manifest {
        let component = "controller"
        let socket = Self.volumeMount("socket-dir", DeployLayout.socketDirectory)
        let sidecarEnvironment: [YAMLValue] = [
            Self.fieldEnvironment("NAMESPACE", "metadata.namespace"),
            Self.fieldEnvironment("POD_NAME", "metadata.name"),
        ]
        let driver: YAMLValue = [
            "name": "vineyard-csi",
            "image": .string(installation.image),
            "imagePullPolicy": .string(installation.imagePullPolicy.rawValue),
            "command": [.string(DeployLayout.driverBinary)],
            "args": .sequence(driverArguments(mode: "controller")),
            "env": [Self.fieldEnvironment("KUBE_NODE_NAME", "spec.nodeName")],
            "ports": [Self.port("healthz", DeployLayout.healthPort)],
            "livenessProbe": Self.httpLivenessProbe(path: "/healthz", port: "healthz"),
            "volumeMounts": [
                socket, Self.volumeMount("state-dir", DeployLayout.stateDirectory),
                Self.volumeMount("vineyard-sockets", DeployLayout.vineyardSocketRoot),
            ],
            "resources": Self.resources(cpu: "10m", memory: "32Mi", cpuLimit: "500m", memoryLimit: "256Mi"),
            "securityContext": Self.unprivileged,
        ]
        let provisioner: YAMLValue = [
            "name": "csi-provisioner",
            "image": .string(installation.sidecars.provisioner),
            "imagePullPolicy": .string(installation.sidecarImagePullPolicy.rawValue),
            "args": [
                "--csi-address=\(DeployLayout.socketPath)",
                "--v=2",
                .commented(
                    "CreateVolume gets the selected node: a volume lives in that node's store.",
                    "--feature-gates=Topology=true"
                ),
                "--strict-topology",
                .commented(
                    "The claim's and PV's names reach CreateVolume (csi.storage.k8s.io/pvc/name, ...).",
                    "--extra-create-metadata"
                ),
                .commented("CSIStorageCapacity per node, owned by this Deployment (pod -> ReplicaSet -> Deployment).", "--enable-capacity"),
                "--capacity-ownerref-level=2",
                "--leader-election",
                "--leader-election-namespace=$(NAMESPACE)",
                "--http-endpoint=:\(DeployLayout.provisionerPort)",
            ],
            "env": .sequence(sidecarEnvironment),
            "ports": [Self.port("provisioner", DeployLayout.provisionerPort)],
            "livenessProbe": Self.httpLivenessProbe(path: "/healthz/leader-election", port: "provisioner"),
            "volumeMounts": [socket],
            "resources": Self.resources(cpu: "10m", memory: "32Mi", cpuLimit: "500m", memoryLimit: "256Mi"),
            "securityContext": Self.unprivileged,
        ]
        let attacher: YAMLValue = [
            "name": "csi-attacher",
            "image": .string(installation.sidecars.attacher),
            "imagePullPolicy": .string(installation.sidecarImagePullPolicy.rawValue),
            "args": [
                "--csi-address=\(DeployLayout.socketPath)",
                "--v=2",
                "--leader-election",
                "--leader-election-namespace=$(NAMESPACE)",
                "--http-endpoint=:\(DeployLayout.attacherPort)",
            ],
            "env": .sequence(sidecarEnvironment),
            "ports": [Self.port("attacher", DeployLayout.attacherPort)],
            "livenessProbe": Self.httpLivenessProbe(path: "/healthz/leader-election", port: "attacher"),
            "volumeMounts": [socket],
            "resources": Self.resources(cpu: "10m", memory: "32Mi", cpuLimit: "500m", memoryLimit: "256Mi"),
            "securityContext": Self.unprivileged,
        ]
        return Manifest(
            .controller, apiVersion: "apps/v1", kind: "Deployment", name: installation.objectName(component),
            namespace: installation.namespace, labels: labels(component),
            comment: "The controller plugin: creates, deletes, publishes and lists volumes.",
            fields: [
                "spec": [
                    "replicas": 1,
                    "strategy": .commented(
                        "One controller at a time: its volume records live in its state directory.",
                        ["type": "Recreate"]
                    ),
                    "selector": ["matchLabels": selectorLabels(component)],
                    "template": [
                        "metadata": ["labels": labels(component)],
                        "spec": [
                            "serviceAccountName": .string(installation.objectName(component)),
                            "nodeSelector": Self.podLinuxNodes,
                            "securityContext": ["seccompProfile": ["type": "RuntimeDefault"]],
                            "containers": [driver, provisioner, attacher, livenessProbeContainer()],
                            "volumes": [
                                .commented(
                                    "The driver's socket, shared by the containers of this pod only.",
                                    ["name": "socket-dir", "emptyDir": [:]]
                                ),
                                .commented(
                                    "The controller's volume records (--state-dir) must outlive the pod. They live on\nthe node the pod runs on: pin the Deployment to one node (deploy/README.md) or\nthe records stay behind when the pod moves.",
                                    Self.hostPathVolume("state-dir", DeployLayout.stateDirectory, type: "DirectoryOrCreate")
                                ),
                                .commented(
                                    "Sockets of vineyard deployments on the controller's node: --backend auto gives a\nnew volume the vineyardd backend when its cluster's socket is here. Where that node\nmay lack one, set the StorageClass parameter k8s.v6d.io/vineyard/backend instead.",
                                    Self.hostPathVolume("vineyard-sockets", DeployLayout.vineyardSocketRoot, type: "DirectoryOrCreate")
                                ),
                            ],
                        ],
                    ],
                ]
            ]
        )
    }
}
