import ArgumentParser
import CSIDriver
import Logging
import POSIXCore

/// `vineyard-csi`: the CSI driver for vineyard volumes.
@main
struct VineyardCSI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vineyard-csi",
        abstract: "Kubernetes CSI driver (\(DriverInfo.name)) whose volumes hold vineyard objects in shared memory.",
        version: DriverInfo.version
    )

    @OptionGroup var options: DriverOptions

    func run() async throws {
        ProcessSignals.applyPolicy()
        let level: Logger.Level = options.verbose ? .debug : .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Startup and serving errors (corrupt state, endpoint in use) name what is wrong; no
        // usage text.
        do {
            let driver = try await Driver.start(options: options, logger: Logger(label: "vineyard-csi"))
            try await driver.serveUntilSignalled()
        } catch {
            FileIO.writeToStandardError("vineyard-csi: \(error)\n")
            throw ExitCode.failure
        }
    }
}
