extension CSIDriverManifests {
    /// Service accounts, and one role per sidecar holding exactly what that sidecar calls.
    ///
    /// A pod has one service account, so the controller's sidecars share `<name>-controller`;
    /// their grants stay in separate roles so each can be read (and audited) on its own. The
    /// node plugin talks only to kubelet, over its socket: its account has no roles and no token.
    func rbac() -> [Manifest] {
        let controller = installation.objectName("controller")
        let node = installation.objectName("node")
        return [
            Manifest(
                .rbac, apiVersion: "v1", kind: "ServiceAccount", name: controller, namespace: installation.namespace,
                labels: labels("controller"), comment: "The controller pod: csi-provisioner and csi-attacher call the API server."
            ),
            Manifest(
                .rbac, apiVersion: "v1", kind: "ServiceAccount", name: node, namespace: installation.namespace,
                labels: labels("node"),
                comment: "The node plugin and node-driver-registrar need no API access.",
                fields: ["automountServiceAccountToken": false]
            ),
        ]
            + sidecarRoles(
                "provisioner",
                comment: "csi-provisioner: creates and deletes PVs for claims of the driver's StorageClasses.",
                namespaceComment: "csi-provisioner in the driver's namespace: leader election and capacity objects.",
                clusterRules: [
                    Self.rule("", ["persistentvolumes"], ["get", "list", "watch", "create", "patch", "delete"]),
                    Self.rule("", ["persistentvolumeclaims"], ["get", "list", "watch", "update"]),
                    Self.rule("storage.k8s.io", ["storageclasses"], ["get", "list", "watch"]),
                    Self.rule("", ["events"], ["list", "watch", "create", "update", "patch"]),
                    .commented(
                        "Topology: the nodes' topology.csi.vineyard.v6d.io/node labels and CSINode objects.",
                        Self.rule("", ["nodes"], ["get", "list", "watch"])
                    ),
                    Self.rule("storage.k8s.io", ["csinodes"], ["get", "list", "watch"]),
                    .commented(
                        "PUBLISH_UNPUBLISH_VOLUME: a volume is deleted only once no VolumeAttachment uses it.",
                        Self.rule("storage.k8s.io", ["volumeattachments"], ["get", "list", "watch"])
                    ),
                ],
                namespaceRules: [
                    Self.rule("coordination.k8s.io", ["leases"], ["get", "watch", "list", "delete", "update", "create"]),
                    .commented(
                        "Capacity tracking (--enable-capacity): one CSIStorageCapacity per node and StorageClass,\nowned by the Deployment, found through the pod and its ReplicaSet.",
                        Self.rule(
                            "storage.k8s.io", ["csistoragecapacities"],
                            ["get", "list", "watch", "create", "update", "patch", "delete"]
                        )
                    ),
                    Self.rule("", ["pods"], ["get"]),
                    Self.rule("apps", ["replicasets"], ["get"]),
                ]
            )
            + sidecarRoles(
                "attacher",
                comment: "csi-attacher: calls ControllerPublish/Unpublish for VolumeAttachments of the driver.",
                namespaceComment: "csi-attacher in the driver's namespace: leader election.",
                clusterRules: [
                    Self.rule("", ["persistentvolumes"], ["get", "list", "watch", "patch"]),
                    Self.rule("storage.k8s.io", ["csinodes"], ["get", "list", "watch"]),
                    Self.rule("storage.k8s.io", ["volumeattachments"], ["get", "list", "watch", "patch"]),
                    Self.rule("storage.k8s.io", ["volumeattachments/status"], ["patch"]),
                ],
                namespaceRules: [
                    Self.rule("coordination.k8s.io", ["leases"], ["get", "watch", "list", "delete", "update", "create"])
                ]
            )
    }

    /// A ClusterRole and a namespaced Role (leader election and the like) for one sidecar,
    /// each bound to the controller's service account.
    private func sidecarRoles(
        _ sidecar: String, comment: String, namespaceComment: String, clusterRules: [YAMLValue],
        namespaceRules: [YAMLValue]
    ) -> [Manifest] {
        let name = installation.objectName(sidecar)
        let subjects: YAMLValue = [
            [
                "kind": "ServiceAccount",
                "name": .string(installation.objectName("controller")),
                "namespace": .string(installation.namespace),
            ]
        ]
        let component = labels(sidecar)
        return [
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: name,
                labels: component, comment: comment, fields: ["rules": .sequence(clusterRules)]
            ),
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", name: name,
                labels: component,
                fields: [
                    "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": .string(name)],
                    "subjects": subjects,
                ]
            ),
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", name: name,
                namespace: installation.namespace, labels: component,
                comment: namespaceComment,
                fields: ["rules": .sequence(namespaceRules)]
            ),
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", name: name,
                namespace: installation.namespace, labels: component,
                fields: [
                    "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": .string(name)],
                    "subjects": subjects,
                ]
            ),
        ]
    }

    static func rule(_ group: String, _ resources: [String], _ verbs: [String]) -> YAMLValue {
        ["apiGroups": .flowSequence([group]), "resources": .flowSequence(resources), "verbs": .flowSequence(verbs)]
    }
}
