import ArgumentParser
import CSIProto

/// Access modes by the names Kubernetes users know, mapped to CSI's.
enum AccessModeOption: String, ExpressibleByArgument, CaseIterable {
    case singleNodeWriter = "single-node-writer"
    case singleNodeReaderOnly = "single-node-reader-only"
    case multiNodeReaderOnly = "multi-node-reader-only"
    case multiNodeSingleWriter = "multi-node-single-writer"
    case multiNodeMultiWriter = "multi-node-multi-writer"
    case singleNodeSingleWriter = "single-node-single-writer"
    case singleNodeMultiWriter = "single-node-multi-writer"

    var mode: Csi_V1_VolumeCapability.AccessMode.Mode {
        switch self {
        case .singleNodeWriter: return .singleNodeWriter
        case .singleNodeReaderOnly: return .singleNodeReaderOnly
        case .multiNodeReaderOnly: return .multiNodeReaderOnly
        case .multiNodeSingleWriter: return .multiNodeSingleWriter
        case .multiNodeMultiWriter: return .multiNodeMultiWriter
        case .singleNodeSingleWriter: return .singleNodeSingleWriter
        case .singleNodeMultiWriter: return .singleNodeMultiWriter
        }
    }
}

/// The volume capability a command passes: a mount with one access mode.
struct VolumeCapabilityOptions: ParsableArguments {
    @Option(help: "Access mode: \(AccessModeOption.allCases.map(\.rawValue).joined(separator: ", ")).")
    var accessMode: AccessModeOption = .singleNodeWriter

    var capability: Csi_V1_VolumeCapability {
        var capability = Csi_V1_VolumeCapability()
        capability.mount = Csi_V1_VolumeCapability.MountVolume()
        capability.accessMode.mode = accessMode.mode
        return capability
    }
}
