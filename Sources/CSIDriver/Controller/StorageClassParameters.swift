import CSIProto
import GRPCTransport

/// Reads the StorageClass parameters of a CreateVolume or GetCapacity request.
enum StorageClassParameters {
    static let known: Set<String> = [VolumeParameterKey.vineyardNamespace, VolumeParameterKey.vineyardName, VolumeParameterKey.backend]

    /// The backend the parameters ask for (`auto`, `embedded` or `vineyardd`), if any.
    ///
    /// - Throws: INVALID_ARGUMENT for another value.
    static func backend(from parameters: [String: String]) throws(RPCStatus) -> BackendSelection.Mode? {
        guard let value = parameters[VolumeParameterKey.backend] else { return nil }
        guard let mode = BackendSelection.Mode(rawValue: value) else {
            throw .invalid(
                "parameters[\(VolumeParameterKey.backend)] \"\(value)\" is not one of "
                    + BackendSelection.Mode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return mode
    }

    /// The vineyard cluster the parameters name, or `fallback` when they name none.
    ///
    /// - Throws: INVALID_ARGUMENT for an unknown key, only one of namespace/name, or names that
    ///   are not valid Kubernetes names.
    static func cluster(from parameters: [String: String], default fallback: ClusterReference) throws(RPCStatus)
        -> ClusterReference
    {
        for key in parameters.keys.sorted()
        where !known.contains(key) && !key.hasPrefix(VolumeParameterKey.kubernetesReservedPrefix) {
            throw .invalid(
                "unknown parameter \"\(key)\"; \(DriverInfo.name) accepts \(known.sorted().joined(separator: ", "))"
            )
        }
        switch (parameters[VolumeParameterKey.vineyardNamespace], parameters[VolumeParameterKey.vineyardName]) {
        case (nil, nil):
            return fallback
        case (let namespace?, let name?):
            let cluster = ClusterReference(namespace: namespace, name: name)
            if let problem = cluster.validationProblem { throw .invalid("parameters: \(problem)") }
            return cluster
        case (nil, _):
            throw .missing("parameters[\(VolumeParameterKey.vineyardNamespace)]")
        case (_, nil):
            throw .missing("parameters[\(VolumeParameterKey.vineyardName)]")
        }
    }
}
