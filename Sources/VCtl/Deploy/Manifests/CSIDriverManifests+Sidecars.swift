extension CSIDriverManifests {
    /// The Kubernetes CSI sidecars that run beside the node plugin and call the API server.
    ///
    /// A volume's objects live in one node's store, so the controller runs on every node
    /// (`vineyard-csi --node-deployment`) and so do csi-provisioner and csi-snapshotter
    /// (`--node-deployment`: each handles only the claims and snapshots of its node).
    /// csi-resizer has no per-node mode; it runs leader-elected in one of these pods, finds no
    /// ControllerExpandVolume and only raises the PV, and kubelet applies the new quota with
    /// NodeExpandVolume on the volume's node.
    func apiSidecars() -> [YAMLValue] {
        [provisionerContainer(), snapshotterContainer(), resizerContainer()]
    }

    private func provisionerContainer() -> YAMLValue {
        sidecar(
            "csi-provisioner", image: installation.sidecars.provisioner,
            arguments: [
                "--v=2",
                .commented("Only claims whose selected node is this node: their data lives in its store.", "--node-deployment"),
                .commented("CreateVolume gets the selected node as accessibility requirement.", "--feature-gates=Topology=true"),
                "--strict-topology",
                .commented(
                    "The claim's and PV's names reach CreateVolume (csi.storage.k8s.io/pvc/name, ...).",
                    "--extra-create-metadata"),
                .commented(
                    "CSIStorageCapacity for this node's store, owned by the DaemonSet (pod -> DaemonSet).",
                    "--enable-capacity"),
                "--capacity-ownerref-level=1",
            ],
            environment: [
                Self.fieldEnvironment("NODE_NAME", "spec.nodeName"),
                Self.fieldEnvironment("NAMESPACE", "metadata.namespace"),
                Self.fieldEnvironment("POD_NAME", "metadata.name"),
            ]
        )
    }

    private func snapshotterContainer() -> YAMLValue {
        sidecar(
            "csi-snapshotter", image: installation.sidecars.snapshotter,
            arguments: [
                "--v=2",
                .commented(
                    "Only snapshots of this node's volumes; needs the cluster's snapshot-controller\nrunning with --enable-distributed-snapshotting (deploy/README.md).",
                    "--node-deployment"),
            ],
            environment: [Self.fieldEnvironment("NODE_NAME", "spec.nodeName")]
        )
    }

    private func resizerContainer() -> YAMLValue {
        sidecar(
            "csi-resizer", image: installation.sidecars.resizer,
            arguments: [
                "--v=2",
                "--leader-election",
                "--leader-election-namespace=$(NAMESPACE)",
                "--http-endpoint=:\(DeployLayout.resizerPort)",
            ],
            environment: [
                Self.fieldEnvironment("NAMESPACE", "metadata.namespace"),
                Self.fieldEnvironment("POD_NAME", "metadata.name"),
            ],
            port: ("resizer", DeployLayout.resizerPort)
        )
    }

    /// An unprivileged sidecar on the driver's socket, with the pod's API token.
    private func sidecar(
        _ name: String, image: String, arguments: [YAMLValue], environment: [YAMLValue],
        port: (name: String, number: Int)? = nil
    ) -> YAMLValue {
        [
            "name": .string(name),
            "image": .string(image),
            "imagePullPolicy": .string(installation.sidecarImagePullPolicy.rawValue),
            "args": .sequence(["--csi-address=\(DeployLayout.socketPath)"] + arguments),
            "env": .sequence(environment),
            "ports": port.map { [Self.port($0.name, $0.number)] } ?? .omitted,
            "livenessProbe": port.map { Self.httpLivenessProbe(path: "/healthz/leader-election", port: $0.name) }
                ?? .omitted,
            "volumeMounts": [
                Self.volumeMount("socket-dir", DeployLayout.socketDirectory),
                Self.apiTokenMount,
            ],
            "resources": Self.resources(cpu: "10m", memory: "32Mi", cpuLimit: "500m", memoryLimit: "256Mi"),
            "securityContext": Self.unprivileged,
        ]
    }

    /// The service account's credentials where client-go looks for them, in the sidecars only:
    /// the privileged driver container gets no token (the pod sets
    /// `automountServiceAccountToken: false` and this volume replaces the automatic one).
    static let apiTokenMount: YAMLValue = [
        "name": "api-token", "mountPath": .string(DeployLayout.serviceAccountDirectory), "readOnly": true,
    ]

    /// The projected volume kubelet would mount automatically: a bound, expiring token, the
    /// cluster's CA and the namespace.
    static let apiTokenVolume: YAMLValue = [
        "name": "api-token",
        "projected": [
            "sources": [
                ["serviceAccountToken": ["path": "token", "expirationSeconds": 3607]],
                ["configMap": ["name": "kube-root-ca.crt", "items": [["key": "ca.crt", "path": "ca.crt"]]]],
                [
                    "downwardAPI": [
                        "items": [["path": "namespace", "fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]]
                    ]
                ],
            ]
        ],
    ]
}
