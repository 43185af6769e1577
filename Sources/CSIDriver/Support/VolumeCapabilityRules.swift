public import CSIProto
public import GRPCTransport

/// Which volume capabilities this driver serves.
///
/// Volumes are FUSE file systems: only the mount access type is served, with no file system
/// type or the driver's own. Every access mode is served: a volume on an embedded store is
/// pinned to one node by topology, so multi-node modes reach one node's store.
public enum VolumeCapabilityRules {
    /// File system types a mount capability may name.
    public static let acceptedFileSystemTypes: Set<String> = ["", "fuse", "fuse.vineyard", "vineyard"]

    /// Checks a request's capability list: present, and every entry well formed.
    ///
    /// - Throws: INVALID_ARGUMENT naming the field when the list is empty or an entry lacks its
    ///   access type or access mode.
    public static func requireWellFormed(_ capabilities: [Csi_V1_VolumeCapability], field: String) throws(RPCStatus) {
        guard !capabilities.isEmpty else { throw .missing(field) }
        for capability in capabilities {
            try requireWellFormed(capability, field: field)
        }
    }

    /// Checks one capability is well formed.
    public static func requireWellFormed(_ capability: Csi_V1_VolumeCapability, field: String) throws(RPCStatus) {
        guard capability.accessType != nil else { throw .missing("\(field).access_type") }
        guard capability.hasAccessMode, capability.accessMode.mode != .unknown else {
            throw .missing("\(field).access_mode")
        }
    }

    /// Why the driver cannot serve `capability`, or nil when it can.
    public static func unsupportedReason(_ capability: Csi_V1_VolumeCapability) -> String? {
        switch capability.accessType {
        case .block:
            return "block access is not supported: vineyard volumes are file systems (use a mount capability)"
        case .mount(let mount):
            if !acceptedFileSystemTypes.contains(mount.fsType) {
                return "fs_type \"\(mount.fsType)\" is not supported: vineyard volumes are FUSE file systems"
            }
            return nil
        case nil:
            return "access_type is not set"
        }
    }

    /// Checks that every capability is served.
    ///
    /// - Throws: INVALID_ARGUMENT with the reason for the first capability that is not.
    public static func requireSupported(_ capabilities: [Csi_V1_VolumeCapability]) throws(RPCStatus) {
        for capability in capabilities {
            if let reason = unsupportedReason(capability) { throw .invalid(reason) }
        }
    }

    /// Whether a mode lets only one node use the volume at a time.
    public static func isSingleNode(_ mode: Csi_V1_VolumeCapability.AccessMode.Mode) -> Bool {
        switch mode {
        case .singleNodeWriter, .singleNodeReaderOnly, .singleNodeSingleWriter, .singleNodeMultiWriter: return true
        default: return false
        }
    }

    /// Whether a mode forbids writes.
    public static func isReadOnly(_ mode: Csi_V1_VolumeCapability.AccessMode.Mode) -> Bool {
        mode == .singleNodeReaderOnly || mode == .multiNodeReaderOnly
    }
}
