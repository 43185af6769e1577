import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi node-info`: the node id and topology the node plugin reports.
    struct NodeInfo: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the node plugin's node id and topology.")

        @OptionGroup var client: CSIClientOptions

        func run() throws {
            let response: Csi_V1_NodeGetInfoResponse = try client.call("Node", "NodeGetInfo", Csi_V1_NodeGetInfoRequest())
            client.print(response) { info in
                ["node: \(info.nodeID)", "max volumes: \(info.maxVolumesPerNode == 0 ? "no limit" : "\(info.maxVolumesPerNode)")"]
                    + info.accessibleTopology.segments.sorted { $0.key < $1.key }.map { "topology: \($0.key)=\($0.value)" }
            }
        }
    }
}
