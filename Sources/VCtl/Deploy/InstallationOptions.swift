import ArgumentParser
import CSIModel
import FoundationEssentials
import Glibc

/// Options that name an installation's objects: `deploy csidriver` and `delete csidriver`
/// take the same ones, so delete finds exactly what deploy created.
struct InstallationOptions: ParsableArguments {
    @Option(
        parsing: .singleValue,
        help: ArgumentHelp(
            "Vineyard clusters as namespace/name, comma-separated or repeated (required).",
            discussion: "Each cluster gets a StorageClass named <namespace>.<name>.csi; the first is the driver's default cluster.",
            valueName: "ns/name[,ns/name...]"
        )
    )
    var clusters: [String] = []

    @Option(help: "Prefix of the installation's object names (<name>-node, <name>-provisioner, ...).")
    var name = CSIDriverInstallation.defaultName

    @Option(name: [.customShort("n"), .long], help: "Namespace of the driver's DaemonSets.")
    var namespace = CSIDriverInstallation.defaultNamespace

    @Option(
        name: [.customShort("s"), .customLong("storageClassName")],
        help: "Name of the StorageClass, with exactly one cluster (default: <namespace>.<name>.csi per cluster)."
    )
    var storageClassName: String?

    func validate() throws {
        let references = try parsedClusters()
        if references.isEmpty {
            throw ValidationError("--clusters is required: the vineyard clusters as namespace/name[,namespace/name...]")
        }
        if let problem = Self.labelProblem(name, maxLength: Self.maxNameLength) {
            throw ValidationError("--name \(name) \(problem)")
        }
        if let problem = Self.labelProblem(namespace, maxLength: 63) {
            throw ValidationError("--namespace \(namespace) \(problem)")
        }
        if let storageClassName {
            if references.count > 1 {
                throw ValidationError(
                    "--storageClassName names one StorageClass but --clusters names \(references.count) clusters; leave it out to get <namespace>.<name>.csi for each"
                )
            }
            if let problem = Self.subdomainProblem(storageClassName) {
                throw ValidationError("--storageClassName \(storageClassName) \(problem)")
            }
        }
    }

    /// The clusters of `--clusters`, in order.
    ///
    /// - Throws: ``ValidationError`` naming the first entry that is not `namespace/name`, or a
    ///   cluster named twice.
    func parsedClusters() throws -> [ClusterReference] {
        var references: [ClusterReference] = []
        for entry in clusters.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let text = entry.trimmingWhitespace
            guard let reference = ClusterReference(parsing: text) else {
                throw ValidationError("--clusters: \"\(text)\" \(Self.clusterProblem(text))")
            }
            if references.contains(reference) { throw ValidationError("--clusters: \(reference) is named twice") }
            references.append(reference)
        }
        return references
    }

    /// The installation these options name, with every other setting at its default.
    func installation() throws -> CSIDriverInstallation {
        var installation = CSIDriverInstallation(clusters: try parsedClusters())
        installation.name = name
        installation.namespace = namespace
        installation.storageClassName = storageClassName
        return installation
    }

    /// `--name` leaves room for the longest suffix, `-provisioner`, in a 63-character name.
    static let maxNameLength = 63 - "-provisioner".count

    private static func clusterProblem(_ text: String) -> String {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "is not namespace/name: it needs exactly one \"/\"" }
        let reference = ClusterReference(namespace: String(parts[0]), name: String(parts[1]))
        return reference.validationProblem.map { "is not namespace/name: \($0)" } ?? "is not namespace/name"
    }

    /// Why `value` is not a DNS-1123 label of at most `maxLength` characters, or nil.
    static func labelProblem(_ value: String, maxLength: Int) -> String? {
        if value.isEmpty { return "is empty" }
        if value.utf8.count > maxLength { return "is longer than \(maxLength) characters" }
        let allowed = value.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        if !allowed { return "must consist of lower-case letters, digits and '-'" }
        if value.hasPrefix("-") || value.hasSuffix("-") { return "must start and end with a letter or digit" }
        return nil
    }

    /// Why `value` is not a DNS-1123 subdomain (dot-separated labels, 253 characters), or nil.
    static func subdomainProblem(_ value: String) -> String? {
        if value.utf8.count > 253 { return "is longer than 253 characters" }
        for label in value.split(separator: ".", omittingEmptySubsequences: false) {
            if labelProblem(String(label), maxLength: 63) != nil {
                return "is not a DNS subdomain: lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit"
            }
        }
        return nil
    }
}
