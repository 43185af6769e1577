import Glibc

/// Which store holds a volume's objects.
public enum VolumeBackend: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// The node's embedded shared-memory store: fastest, but the data lives on one node, so
    /// the volume is pinned to it.
    case embedded
    /// A vineyard deployment's vineyardd (with etcd metadata): names are known cluster-wide and
    /// the volume is not pinned to a node.
    case vineyardd

    public var description: String { rawValue }
}

/// How the driver picks a volume's backend (`--backend`, `--vineyard-socket-root`).
///
/// `auto` uses a cluster's vineyardd when its socket exists where vineyard's operator puts it,
/// `<socket root>/<namespace>/<name>/vineyard.sock`, and the embedded store otherwise. The
/// choice is made once per volume (at CreateVolume, or at staging for volumes whose context
/// names none) and recorded, so a vineyardd that is down for a moment never moves a volume.
public struct BackendSelection: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case auto
        case embedded
        case vineyardd
    }

    /// Where vineyard's operator mounts its deployments' sockets on a node.
    public static let defaultSocketRoot = "/var/run/vineyard-kubernetes"

    public var mode: Mode
    public var socketRoot: String

    public init(mode: Mode, socketRoot: String = Self.defaultSocketRoot) {
        self.mode = mode
        self.socketRoot = socketRoot
    }

    /// Always the embedded store (tests, and drivers built before cluster mode).
    public static let embeddedOnly = BackendSelection(mode: .embedded)

    /// The socket of a cluster's vineyardd on this node.
    public func socketPath(for cluster: ClusterReference) -> String {
        "\(socketRoot)/\(cluster.namespace)/\(cluster.name)/vineyard.sock"
    }

    /// The backend for a new volume of `cluster`; `requested` is the StorageClass's
    /// `k8s.v6d.io/vineyard/backend` parameter, if any (`auto`, `embedded` or `vineyardd`).
    public func choose(for cluster: ClusterReference, requested: Mode? = nil) -> VolumeBackend {
        switch requested ?? mode {
        case .embedded: return .embedded
        case .vineyardd: return .vineyardd
        case .auto: return Self.isSocket(socketPath(for: cluster)) ? .vineyardd : .embedded
        }
    }

    static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}
