public import GRPCTransport
public import Logging
import CSIProto
import SwiftProtobuf

/// Routes each unary call by its full gRPC method name to the CSI service that serves it.
///
/// Decoding, encoding and logging live here so the services see typed messages only. The
/// router is also the in-process path: tests hand it a ``UnaryRequest`` without any socket.
public struct CSIRouter: UnaryHandler {
    private typealias Route = @Sendable ([UInt8], _ log: CallLog) async -> Result<[UInt8], RPCStatus>

    /// A route and the method's short name (`NodeStageVolume`), which the observer is told.
    private var routes: [String: (name: String, route: Route)] = [:]
    private let logger: Logger
    private let verbose: Bool
    private let observer: (any CSICallObserver)?

    /// - Parameters:
    ///   - controller: nil when this process does not run the controller plugin.
    ///   - node: nil when this process does not run the node plugin.
    ///   - verbose: log every request and response (secrets redacted).
    ///   - observer: told of every call answered (metrics).
    public init(
        identity: any CSIIdentityService,
        controller: (any CSIControllerService)?,
        node: (any CSINodeService)?,
        logger: Logger,
        verbose: Bool,
        observer: (any CSICallObserver)? = nil
    ) {
        self.logger = logger
        self.verbose = verbose
        self.observer = observer
        add("Identity", "GetPluginInfo", identity.getPluginInfo)
        add("Identity", "GetPluginCapabilities", identity.getPluginCapabilities)
        add("Identity", "Probe", identity.probe)
        if let controller {
            add("Controller", "CreateVolume", controller.createVolume)
            add("Controller", "DeleteVolume", controller.deleteVolume)
            add("Controller", "ControllerPublishVolume", controller.controllerPublishVolume)
            add("Controller", "ControllerUnpublishVolume", controller.controllerUnpublishVolume)
            add("Controller", "ValidateVolumeCapabilities", controller.validateVolumeCapabilities)
            add("Controller", "ListVolumes", controller.listVolumes)
            add("Controller", "GetCapacity", controller.getCapacity)
            add("Controller", "ControllerGetCapabilities", controller.controllerGetCapabilities)
            add("Controller", "ControllerGetVolume", controller.controllerGetVolume)
            add("Controller", "CreateSnapshot", controller.createSnapshot)
            add("Controller", "DeleteSnapshot", controller.deleteSnapshot)
            add("Controller", "ListSnapshots", controller.listSnapshots)
            add("Controller", "GetSnapshot", controller.getSnapshot)
            add("Controller", "ControllerExpandVolume", controller.controllerExpandVolume)
        }
        if let node {
            add("Node", "NodeStageVolume", node.nodeStageVolume)
            add("Node", "NodeUnstageVolume", node.nodeUnstageVolume)
            add("Node", "NodePublishVolume", node.nodePublishVolume)
            add("Node", "NodeUnpublishVolume", node.nodeUnpublishVolume)
            add("Node", "NodeGetVolumeStats", node.nodeGetVolumeStats)
            add("Node", "NodeGetCapabilities", node.nodeGetCapabilities)
            add("Node", "NodeGetInfo", node.nodeGetInfo)
            add("Node", "NodeExpandVolume", node.nodeExpandVolume)
        }
    }

    /// The full method names this router serves, e.g. `/csi.v1.Identity/Probe`.
    public var methods: [String] { routes.keys.sorted() }

    public func handle(_ request: UnaryRequest) async -> Result<[UInt8], RPCStatus> {
        let start = ContinuousClock.now
        let name: String
        let result: Result<[UInt8], RPCStatus>
        if let (routeName, route) = routes[request.method] {
            name = routeName
            result = await route(request.payload, CallLog(method: request.method, logger: logger, verbose: verbose))
        } else {
            let status = RPCStatus(.unimplemented, "method \(request.method) is not implemented by \(DriverInfo.name)")
            logger.debug("call failed", metadata: ["method": "\(request.method)", "code": "\(status.code)"])
            name = "unimplemented"
            result = .failure(status)
        }
        if let observer {
            let code: StatusCode
            switch result {
            case .success: code = .ok
            case .failure(let status): code = status.code
            }
            observer.csiCallCompleted(method: name, code: code, duration: .now - start)
        }
        return result
    }

    private mutating func add<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ service: String,
        _ method: String,
        _ body: @escaping @Sendable (Request) async throws(RPCStatus) -> Response
    ) {
        routes["/csi.v1.\(service)/\(method)"] = (method, { payload, log in
            let request: Request
            do {
                request = try Request(serializedBytes: payload)
            } catch {
                let status = RPCStatus(.invalidArgument, "malformed \(Request.protoMessageName): \(error)")
                log.failed(status)
                return .failure(status)
            }
            log.request(request)
            do {
                let response = try await body(request)
                log.response(response)
                return .success(try response.serializedBytes())
            } catch let status as RPCStatus {
                log.failed(status)
                return .failure(status)
            } catch {
                let status = RPCStatus(.internalError, "cannot encode \(Response.protoMessageName): \(error)")
                log.failed(status)
                return .failure(status)
            }
        })
    }
}

/// Logs one call: failures always, requests and responses when verbose, with secrets redacted.
struct CallLog: Sendable {
    var method: String
    var logger: Logger
    var verbose: Bool

    func request(_ message: some SwiftProtobuf.Message) {
        guard verbose else { return }
        logger.info("request", metadata: ["method": "\(method)", "body": "\(SecretRedaction.redactedJSON(message))"])
    }

    func response(_ message: some SwiftProtobuf.Message) {
        guard verbose else { return }
        logger.info("response", metadata: ["method": "\(method)", "body": "\(SecretRedaction.redactedJSON(message))"])
    }

    func failed(_ status: RPCStatus) {
        logger.info("call failed", metadata: ["method": "\(method)", "code": "\(status.code)", "message": "\(status.message)"])
    }
}
