public import GRPCTransport

/// Where a volume's provisioned capacity is recorded, when a controller runs in the node
/// plugin's process.
///
/// A node-local deployment expands volumes at NodeExpandVolume only (csi-resizer cannot run
/// on every node, see ``ControllerConfiguration/nodeLocal``). The node asks the ledger first,
/// so the controller's records, ControllerGetVolume and the store's budget agree with the
/// quota the mount enforces.
public protocol VolumeCapacityLedger: Sendable {
    /// Records that the volume now holds `capacityBytes`, if that fits its store.
    ///
    /// - Returns: `false` when the ledger does not know the volume (an inline volume).
    /// - Throws: OUT_OF_RANGE or RESOURCE_EXHAUSTED when the store cannot hold it.
    func recordExpansion(of volumeID: String, to capacityBytes: Int) throws(RPCStatus) -> Bool
}

extension ControllerService: VolumeCapacityLedger {
    public func recordExpansion(of volumeID: String, to capacityBytes: Int) throws(RPCStatus) -> Bool {
        try expand(volumeID: volumeID, to: CapacityRequest(atLeast: capacityBytes)) != nil
    }
}
