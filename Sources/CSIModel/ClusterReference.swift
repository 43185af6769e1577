/// A vineyard cluster, named like its Kubernetes object: `namespace/name`.
///
/// Every volume belongs to one cluster; the cluster decides which store holds its objects.
public struct ClusterReference: Hashable, Sendable, Codable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// Parses `namespace/name`; both parts must be DNS-1123 labels.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let candidate = ClusterReference(namespace: String(parts[0]), name: String(parts[1]))
        guard candidate.validationProblem == nil else { return nil }
        self = candidate
    }

    /// The StorageClass name used for this cluster: `<namespace>.<name>.csi`.
    public var storageClassName: String { "\(namespace).\(name).csi" }

    public var description: String { "\(namespace)/\(name)" }

    /// Why this reference is not usable as Kubernetes names, or nil when it is.
    public var validationProblem: String? {
        for (label, value) in [("namespace", namespace), ("name", name)] {
            if let problem = Self.dns1123Problem(value) { return "vineyard cluster \(label) \"\(value)\" \(problem)" }
        }
        return nil
    }

    private static func dns1123Problem(_ value: String) -> String? {
        if value.isEmpty { return "is empty" }
        if value.utf8.count > 63 { return "is longer than 63 characters" }
        let allowed = value.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        if !allowed { return "must consist of lower-case letters, digits and '-'" }
        if value.hasPrefix("-") || value.hasSuffix("-") { return "must start and end with a letter or digit" }
        return nil
    }
}
