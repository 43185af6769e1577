import ArgumentParser
import CSIModel
import CSIProto

extension CSICommand {
    /// `vctl csi list-volumes`: every volume, following pagination tokens.
    struct ListVolumes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-volumes", abstract: "List volumes with their capacity and published nodes.")

        @OptionGroup var client: CSIClientOptions

        @Option(help: "Entries per page requested from the driver (0 = driver's choice).")
        var pageSize: Int32 = 0

        @Option(help: "Start at this pagination token and print only one page.")
        var startingToken: String?

        func validate() throws {
            if pageSize < 0 { throw ValidationError("--page-size must not be negative") }
        }

        func run() throws {
            var request = Csi_V1_ListVolumesRequest()
            request.maxEntries = pageSize
            request.startingToken = startingToken ?? ""
            var all = Csi_V1_ListVolumesResponse()
            repeat {
                let page: Csi_V1_ListVolumesResponse = try client.call("Controller", "ListVolumes", request)
                all.entries += page.entries
                all.nextToken = page.nextToken
                request.startingToken = page.nextToken
            } while startingToken == nil && !request.startingToken.isEmpty
            client.print(all) { response in
                var lines = response.entries.map { entry in
                    let nodes = entry.status.publishedNodeIds.joined(separator: ",")
                    return "\(entry.volume.volumeID)\t\(entry.volume.capacityBytes)\t\(VolumeSummary.backend(entry.volume))\t\(nodes.isEmpty ? "-" : nodes)"
                }
                lines.insert("VOLUME\tCAPACITY\tBACKEND\tPUBLISHED", at: 0)
                if startingToken != nil && !response.nextToken.isEmpty { lines.append("next token: \(response.nextToken)") }
                return lines
            }
        }
    }
}
