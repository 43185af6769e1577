extension CSIDriverManifests {
    /// vineyard-csi-fdholder on every node: keeps the /dev/fuse descriptors of the node plugin's
    /// mounts while the plugin's pod restarts, crashes or is upgraded, so pods never see
    /// ENOTCONN. A DaemonSet of its own, updated only when its pods are deleted (`OnDelete`):
    /// rolling out a new driver image restarts the node plugin, never the holder.
    func descriptorHolder() -> Manifest {
        let component = "fdholder"
        let holder: YAMLValue = [
            "name": "vineyard-csi-fdholder",
            "image": .string(installation.image),
            "imagePullPolicy": .string(installation.imagePullPolicy.rawValue),
            "command": [.string(DeployLayout.holderBinary)],
            "args": ["--socket=\(DeployLayout.holderSocket)"],
            "volumeMounts": [Self.volumeMount("handover-dir", DeployLayout.handoverDirectory)],
            "resources": Self.resources(cpu: "5m", memory: "8Mi", cpuLimit: "100m", memoryLimit: "64Mi"),
            "securityContext": .commented(
                "It only keeps descriptors it is given and writes to them: no privileges.", Self.unprivileged),
        ]
        return Manifest(
            .node, apiVersion: "apps/v1", kind: "DaemonSet", name: installation.objectName(component),
            namespace: installation.namespace, labels: labels(component),
            comment: "The descriptor holder: keeps the node plugin's FUSE connections alive across its restarts.",
            fields: [
                "spec": [
                    "selector": ["matchLabels": selectorLabels(component)],
                    "updateStrategy": .commented(
                        "Deleting a holder pod ends every mount it holds that no plugin serves at that\nmoment; update it only by deleting its pods, on drained nodes.",
                        ["type": "OnDelete"]),
                    "template": [
                        "metadata": ["labels": labels(component)],
                        "spec": [
                            "serviceAccountName": .string(installation.objectName("node")),
                            "automountServiceAccountToken": false,
                            "priorityClassName": "system-node-critical",
                            "nodeSelector": Self.podLinuxNodes,
                            "tolerations": installation.enableToleration
                                ? .commented("--enableToleration: run on every node, tainted or not.", [["operator": "Exists"]])
                                : .omitted,
                            "containers": [holder],
                            "volumes": [
                                Self.hostPathVolume("handover-dir", DeployLayout.handoverDirectory, type: "DirectoryOrCreate")
                            ],
                        ],
                    ],
                ]
            ]
        )
    }
}
