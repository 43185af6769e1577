import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi info`: the plugin's name, version and capabilities.
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the driver's name, version and capabilities.")

        @OptionGroup var client: CSIClientOptions

        func run() throws {
            let info: Csi_V1_GetPluginInfoResponse = try client.call("Identity", "GetPluginInfo", Csi_V1_GetPluginInfoRequest())
            let plugin: Csi_V1_GetPluginCapabilitiesResponse = try client.call(
                "Identity", "GetPluginCapabilities", Csi_V1_GetPluginCapabilitiesRequest())
            client.print(info) { info in
                ["name: \(info.name)", "version: \(info.vendorVersion)"]
                    + plugin.capabilities.map { "plugin capability: \(describe($0))" }
            }
        }

        private func describe(_ capability: Csi_V1_PluginCapability) -> String {
            switch capability.type {
            case .service(let service): return protoEnumName(service.type)
            case .volumeExpansion(let expansion): return "VOLUME_EXPANSION_" + protoEnumName(expansion.type)
            case nil: return "unknown"
            }
        }
    }
}

/// The csi.proto spelling of an enum case (`controllerService` -> `CONTROLLER_SERVICE`).
func protoEnumName(_ value: some Any) -> String {
    var name = ""
    for character in "\(value)" {
        if character.isUppercase && !name.isEmpty { name.append("_") }
        name.append(contentsOf: character.uppercased())
    }
    return name
}
