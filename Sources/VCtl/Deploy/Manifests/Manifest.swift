/// One Kubernetes object of the installation, and the file of `deploy/` it is written to.
struct Manifest: Equatable, Sendable {
    /// The files of `deploy/` that `vctl deploy csidriver --render-to` writes, in apply order.
    enum File: String, CaseIterable, Sendable {
        case namespace
        case csiDriver = "csidriver"
        case rbac
        case storageClass = "storageclass"
        case node
        /// VolumeSnapshotClasses: their kind exists only once the cluster has the snapshot CRDs,
        /// so they are applied apart and kustomization.yaml leaves them out.
        case snapshotClass = "snapshotclass"

        var fileName: String { "\(rawValue).yaml" }
        /// Whether the file's kinds are CustomResourceDefinitions a cluster may lack.
        var needsSnapshotCRDs: Bool { self == .snapshotClass }
    }

    var file: File
    var apiVersion: String
    var kind: String
    var name: String
    /// nil for cluster-scoped objects.
    var namespace: String?
    /// The whole object: apiVersion, kind, metadata and the rest.
    var document: YAMLValue
    /// Printed above the object.
    var comment: String?

    /// An object with the standard metadata; `fields` follow `metadata`.
    init(
        _ file: File, apiVersion: String, kind: String, name: String, namespace: String? = nil,
        labels: YAMLValue, comment: String? = nil, fields: KeyValuePairs<String, YAMLValue> = [:]
    ) {
        self.file = file
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.comment = comment
        var entries: [YAMLEntry] = [
            YAMLEntry(key: "apiVersion", value: .string(apiVersion)),
            YAMLEntry(key: "kind", value: .string(kind)),
            YAMLEntry(
                key: "metadata",
                value: ["name": .string(name), "namespace": namespace.map(YAMLValue.string) ?? .omitted, "labels": labels]
            ),
        ]
        entries += fields.map { YAMLEntry(key: $0.key, value: $0.value) }
        self.document = .mapping(entries)
    }

    /// `kind/name`, as kubectl names objects.
    var reference: String { "\(kind.lowercased())/\(name)" }

    /// The object as a YAML document, its comment first.
    var yamlText: String {
        let header = comment.map { text in
            text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.isEmpty ? "#\n" : "# \($0)\n" }.joined()
        } ?? ""
        return header + document.yamlText
    }
}

extension [Manifest] {
    /// The objects of kinds every cluster has, and those that need the snapshot CRDs (applied
    /// and deleted apart, see ``Manifest/File/needsSnapshotCRDs``).
    var splitBySnapshotCRDs: (always: [Manifest], needingCRDs: [Manifest]) {
        (filter { !$0.file.needsSnapshotCRDs }, filter { $0.file.needsSnapshotCRDs })
    }

    /// A multi-document YAML stream for `kubectl apply -f -`.
    var yamlStream: String {
        map(\.yamlText).joined(separator: "---\n")
    }
}
