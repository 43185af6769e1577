import FoundationEssentials
import Glibc
import POSIXCore
public import CSIProto
public import GRPCTransport
public import Logging
import Synchronization

/// The CSI Node service: stages a volume as one FUSE session per node, publishes it to pods'
/// target paths by bind mounts, and reports usage and condition.
///
/// Every change is recorded durably before it is answered. When the plugin restarts it mounts
/// every staged volume again and re-binds every published target (see ``recover()``).
public final class NodeService: CSINodeService {
    private struct State {
        var staged: [String: StagedVolumeRecord] = [:]
        var published: [String: PublishedTargetRecord] = [:]
    }

    private let configuration: NodeConfiguration
    private let host: any VolumeHost
    private let mounter: any Mounter
    private let stagedRecords: DurableRecordStore<StagedVolumeRecord>
    private let publishedRecords: DurableRecordStore<PublishedTargetRecord>
    /// One lock for all node operations: they are few, and mount operations on one path must
    /// not interleave.
    private let state: Mutex<State>
    private let logger: Logger
    /// The controller's records, when a controller runs in this process.
    private let capacityLedger: (any VolumeCapacityLedger)?

    /// Loads the node's durable state.
    ///
    /// - Parameter capacityLedger: the controller in this process, told of every expansion
    ///   before the node applies it.
    /// - Throws: ``StateError`` naming the file when the state is unreadable or corrupt.
    public init(
        configuration: NodeConfiguration, host: any VolumeHost, mounter: any Mounter, logger: Logger,
        capacityLedger: (any VolumeCapacityLedger)? = nil
    ) throws(StateError) {
        let (stagedRecords, staged) = try DurableRecordStore<StagedVolumeRecord>.open(
            directory: "\(configuration.stateDirectory)/staged")
        let (publishedRecords, published) = try DurableRecordStore<PublishedTargetRecord>.open(
            directory: "\(configuration.stateDirectory)/published")
        var initial = State()
        for record in staged { initial.staged[record.key] = record }
        for record in published { initial.published[record.key] = record }
        self.configuration = configuration
        self.host = host
        self.mounter = mounter
        self.stagedRecords = stagedRecords
        self.publishedRecords = publishedRecords
        self.state = Mutex(initial)
        self.logger = logger
        self.capacityLedger = capacityLedger
    }

    /// Re-establishes every staged volume's file system and every published target after a
    /// restart: stale mounts left by the previous process are detached first. Failures are
    /// logged and leave the record, so a later NodeUnpublish/NodeUnstage still cleans up.
    public func recover() async {
        await DedicatedThread.run(named: "csi node recovery") { [self] in recoverNow() }
    }

    private func recoverNow() {
        state.withLock { state in
            // Mounts the previous process left serving (its descriptors were held) are taken over
            // as they are; pods keep their open files and their bind mounts.
            var resumed: Set<String> = []
            for record in state.staged.values.sorted(by: { $0.stagingPath < $1.stagingPath }) {
                if host.resume(record.volume, at: record.stagingPath) {
                    resumed.insert(record.stagingPath)
                    logger.info("resumed staged volume", metadata: ["volume": "\(record.volume.volumeID)", "path": "\(record.stagingPath)"])
                    continue
                }
                do {
                    try remountSession(record.volume, at: record.stagingPath)
                    logger.info("re-staged volume", metadata: ["volume": "\(record.volume.volumeID)", "path": "\(record.stagingPath)"])
                } catch {
                    logger.error("cannot re-stage volume", metadata: ["volume": "\(record.volume.volumeID)", "error": "\(error)"])
                }
            }
            for record in state.published.values.sorted(by: { $0.targetPath < $1.targetPath }) {
                if let stagingPath = record.stagingPath, resumed.contains(stagingPath), mounter.mount(at: record.targetPath) != nil {
                    continue  // the bind mount of a resumed session is alive
                }
                if record.stagingPath == nil && host.resume(record.volume, at: record.targetPath) {
                    logger.info("resumed ephemeral volume", metadata: ["volume": "\(record.volume.volumeID)", "target": "\(record.targetPath)"])
                    continue
                }
                do {
                    if let stagingPath = record.stagingPath {
                        detachStaleMount(at: record.targetPath)
                        try mounter.bindMount(source: stagingPath, target: record.targetPath, flags: record.bindFlags)
                    } else {
                        try remountSession(record.volume, at: record.targetPath)
                    }
                    logger.info("re-published volume", metadata: ["volume": "\(record.volume.volumeID)", "target": "\(record.targetPath)"])
                } catch {
                    logger.error("cannot re-publish volume", metadata: ["target": "\(record.targetPath)", "error": "\(error)"])
                }
            }
        }
    }

    /// Volumes staged and targets published now (metrics read them at scrape time).
    public var volumeCounts: (staged: Int, published: Int) {
        state.withLock { ($0.staged.count, $0.published.count) }
    }

    // MARK: - Identity of the node

    public func nodeGetInfo(_ request: Csi_V1_NodeGetInfoRequest) async throws(RPCStatus) -> Csi_V1_NodeGetInfoResponse {
        var response = Csi_V1_NodeGetInfoResponse()
        response.nodeID = configuration.nodeID
        response.maxVolumesPerNode = Int64(configuration.maxVolumes)
        response.accessibleTopology.segments = [
            DriverInfo.nodeTopologyKey: configuration.nodeID,
            DriverInfo.hostnameTopologyKey: configuration.nodeID,
        ]
        return response
    }

    public func nodeGetCapabilities(_ request: Csi_V1_NodeGetCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_NodeGetCapabilitiesResponse
    {
        let supported: [Csi_V1_NodeServiceCapability.RPC.TypeEnum] = [
            .stageUnstageVolume, .getVolumeStats, .volumeCondition, .singleNodeMultiWriter, .expandVolume,
        ]
        var response = Csi_V1_NodeGetCapabilitiesResponse()
        response.capabilities = supported.map { kind in
            var rpc = Csi_V1_NodeServiceCapability.RPC()
            rpc.type = kind
            var capability = Csi_V1_NodeServiceCapability()
            capability.rpc = rpc
            return capability
        }
        return response
    }

    // MARK: - Stage / unstage

    public func nodeStageVolume(_ request: Csi_V1_NodeStageVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeStageVolumeResponse
    {
        try Self.requireVolumeID(request.volumeID)
        guard !request.stagingTargetPath.isEmpty else { throw .missing("staging_target_path") }
        guard request.hasVolumeCapability else { throw .missing("volume_capability") }
        try VolumeCapabilityRules.requireWellFormed(request.volumeCapability, field: "volume_capability")
        if let reason = VolumeCapabilityRules.unsupportedReason(request.volumeCapability) { throw .invalid(reason) }
        let stagingPath = try Self.absolutePath(request.stagingTargetPath, field: "staging_target_path")
        let volume = try descriptor(request.volumeID, context: request.volumeContext, ephemeral: false)

        try await locked { [self] state throws(RPCStatus) in
            if let existing = state.staged[volume.volumeID] {
                guard existing.stagingPath == stagingPath else {
                    throw .failedPrecondition("volume \(volume.volumeID) is already staged at \(existing.stagingPath)")
                }
                guard existing.volume.cluster == volume.cluster else {
                    throw .alreadyExists("volume \(volume.volumeID) is staged with another vineyard cluster")
                }
                if host.isServing(path: stagingPath) { return }
                try remountSession(existing.volume, at: stagingPath)  // lost its session: serve it again
                return
            }
            if configuration.maxVolumes > 0 && state.staged.count >= configuration.maxVolumes {
                throw RPCStatus(.resourceExhausted, "node \(configuration.nodeID) already stages \(configuration.maxVolumes) volumes")
            }
            try Self.makeDirectory(stagingPath)
            try mountSession(volume, at: stagingPath)
            let record = StagedVolumeRecord(volume: volume, stagingPath: stagingPath)
            do {
                try stagedRecords.save(record)
            } catch {
                try? host.unmount(path: stagingPath)
                throw .internalError("cannot record staging of \(volume.volumeID): \(error)")
            }
            state.staged[volume.volumeID] = record
        }
        logger.info(
            "staged volume",
            metadata: ["volume": "\(volume.volumeID)", "path": "\(stagingPath)", "backend": "\(volume.effectiveBackend)"])
        return Csi_V1_NodeStageVolumeResponse()
    }

    public func nodeUnstageVolume(_ request: Csi_V1_NodeUnstageVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeUnstageVolumeResponse
    {
        try Self.requireVolumeID(request.volumeID)
        guard !request.stagingTargetPath.isEmpty else { throw .missing("staging_target_path") }
        let stagingPath = try Self.absolutePath(request.stagingTargetPath, field: "staging_target_path")
        try await locked { [self] state throws(RPCStatus) in
            guard let record = state.staged[request.volumeID], record.stagingPath == stagingPath else {
                // Not staged here (or already unstaged): make sure nothing of ours is left mounted.
                if host.isServing(path: stagingPath) { try unmountSession(at: stagingPath) }
                return
            }
            let users = state.published.values.filter { $0.stagingPath == stagingPath }.map(\.targetPath).sorted()
            guard users.isEmpty else {
                throw .failedPrecondition("volume \(request.volumeID) is still published at \(users.joined(separator: ", "))")
            }
            try unmountSession(at: stagingPath)
            do { try stagedRecords.remove(key: record.key) } catch {
                throw .internalError("cannot record unstaging of \(request.volumeID): \(error)")
            }
            state.staged[record.key] = nil
        }
        logger.info("unstaged volume", metadata: ["volume": "\(request.volumeID)", "path": "\(stagingPath)"])
        return Csi_V1_NodeUnstageVolumeResponse()
    }

    // MARK: - Publish / unpublish

    public func nodePublishVolume(_ request: Csi_V1_NodePublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodePublishVolumeResponse
    {
        try Self.requireVolumeID(request.volumeID)
        guard !request.targetPath.isEmpty else { throw .missing("target_path") }
        guard request.hasVolumeCapability else { throw .missing("volume_capability") }
        try VolumeCapabilityRules.requireWellFormed(request.volumeCapability, field: "volume_capability")
        if let reason = VolumeCapabilityRules.unsupportedReason(request.volumeCapability) { throw .invalid(reason) }
        let targetPath = try Self.absolutePath(request.targetPath, field: "target_path")
        let ephemeral = request.volumeContext[EphemeralVolume.contextKey] == "true"
        let readOnly = request.readonly || VolumeCapabilityRules.isReadOnly(request.volumeCapability.accessMode.mode)
        let volume = try descriptor(request.volumeID, context: request.volumeContext, ephemeral: ephemeral)
        let mountFlags = request.volumeCapability.mount.mountFlags
        if case .failure(let unsupported) = BindMountFlags.parse(mountFlags) {
            throw .invalid("mount flag \"\(unsupported.name)\" is not supported; supported: \(BindMountFlags.byName.keys.sorted().joined(separator: ", "))")
        }
        var stagingPath: String?
        if !ephemeral {
            guard !request.stagingTargetPath.isEmpty else {
                throw RPCStatus(.failedPrecondition, "staging_target_path missing in request: stage the volume first")
            }
            stagingPath = try Self.absolutePath(request.stagingTargetPath, field: "staging_target_path")
        }

        let publishedStagingPath = stagingPath
        try await locked { [self] state throws(RPCStatus) in
            let stagingPath = publishedStagingPath
            let key = PublishedTargetRecord.key(volumeID: volume.volumeID, targetPath: targetPath)
            if let existing = state.published[key] {
                guard existing.readOnly == readOnly, existing.stagingPath == stagingPath, existing.mountFlags == mountFlags else {
                    throw .alreadyExists("volume \(volume.volumeID) is already published at \(targetPath) with other options")
                }
                return
            }
            if let other = state.published.values.first(where: { $0.targetPath == targetPath }) {
                throw .alreadyExists("target \(targetPath) is already used by volume \(other.volume.volumeID)")
            }
            let record = PublishedTargetRecord(
                volume: volume, targetPath: targetPath, stagingPath: stagingPath, readOnly: readOnly, mountFlags: mountFlags)
            try Self.makeDirectory(targetPath)
            if let stagingPath {
                guard let staged = state.staged[volume.volumeID], staged.stagingPath == stagingPath else {
                    throw .failedPrecondition("volume \(volume.volumeID) is not staged at \(stagingPath)")
                }
                do {
                    try mounter.bindMount(source: stagingPath, target: targetPath, flags: record.bindFlags)
                } catch {
                    throw .internalError("\(error)")
                }
            } else {
                if state.published.values.contains(where: { $0.volume.volumeID == volume.volumeID }) {
                    throw .alreadyExists("ephemeral volume \(volume.volumeID) is already published elsewhere")
                }
                try mountSession(volume, at: targetPath)
            }
            do {
                try publishedRecords.save(record)
            } catch {
                try? mounter.unmount(targetPath, lazy: true)
                throw .internalError("cannot record publication of \(volume.volumeID): \(error)")
            }
            state.published[key] = record
        }
        logger.info("published volume", metadata: ["volume": "\(volume.volumeID)", "target": "\(targetPath)", "readonly": "\(readOnly)"])
        return Csi_V1_NodePublishVolumeResponse()
    }

    public func nodeUnpublishVolume(_ request: Csi_V1_NodeUnpublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeUnpublishVolumeResponse
    {
        try Self.requireVolumeID(request.volumeID)
        guard !request.targetPath.isEmpty else { throw .missing("target_path") }
        let targetPath = try Self.absolutePath(request.targetPath, field: "target_path")
        try await locked { [self] state throws(RPCStatus) in
            let key = PublishedTargetRecord.key(volumeID: request.volumeID, targetPath: targetPath)
            let record = state.published[key]
            if let record, record.stagingPath == nil {
                try unmountSession(at: targetPath)
                do { try host.purge(record.volume) } catch {
                    logger.error("cannot purge ephemeral volume", metadata: ["volume": "\(request.volumeID)", "error": "\(error)"])
                }
            } else {
                // Lazy: a pod's volume must come off even when busy or when its server is gone.
                while mounter.mount(at: targetPath) != nil {
                    do { try mounter.unmount(targetPath, lazy: true) } catch { throw .internalError("\(error)") }
                }
            }
            Self.removeDirectory(targetPath)
            if let record {
                do { try publishedRecords.remove(key: record.key) } catch {
                    throw .internalError("cannot record unpublication of \(request.volumeID): \(error)")
                }
                state.published[key] = nil
            }
        }
        logger.info("unpublished volume", metadata: ["volume": "\(request.volumeID)", "target": "\(targetPath)"])
        return Csi_V1_NodeUnpublishVolumeResponse()
    }

    // MARK: - Stats

    public func nodeGetVolumeStats(_ request: Csi_V1_NodeGetVolumeStatsRequest) async throws(RPCStatus)
        -> Csi_V1_NodeGetVolumeStatsResponse
    {
        try Self.requireVolumeID(request.volumeID)
        guard !request.volumePath.isEmpty else { throw .missing("volume_path") }
        // Any path that is not one of the volume's paths, relative ones included, is NOT_FOUND:
        // the spec asks for that code when the volume is not at the given path.
        let path = (try? Self.absolutePath(request.volumePath, field: "volume_path")) ?? request.volumePath
        // A stat of a hung FUSE mount and a vineyardd's status may block: off the cooperative pool.
        return try await DedicatedThread.run(named: "csi node stats") { [self] () throws(RPCStatus) in
            try volumeStats(volumeID: request.volumeID, path: path)
        }
    }

    private func volumeStats(volumeID: String, path: String) throws(RPCStatus) -> Csi_V1_NodeGetVolumeStatsResponse {
        let (volume, servingPath) = try state.withLock { state throws(RPCStatus) -> (VolumeDescriptor, String) in
            if let staged = state.staged[volumeID], staged.stagingPath == path { return (staged.volume, path) }
            if let published = state.published.values.first(where: { $0.volume.volumeID == volumeID && $0.targetPath == path }) {
                return (published.volume, published.stagingPath ?? path)
            }
            if state.staged[volumeID] == nil && !state.published.values.contains(where: { $0.volume.volumeID == volumeID }) {
                throw .notFound("volume \(volumeID) is not staged or published on node \(configuration.nodeID)")
            }
            throw .notFound("volume \(volumeID) is not available at \(path)")
        }
        var response = Csi_V1_NodeGetVolumeStatsResponse()
        let alive = host.isServing(path: servingPath) && Self.answers(path)
        response.volumeCondition.abnormal = !alive
        response.volumeCondition.message = alive
            ? "volume is served at \(servingPath)" + (host.fileServing(path: servingPath).map { "; files: \($0)" } ?? "")
            : "the file-system session of \(servingPath) is gone; restart the node plugin or re-stage the volume"
        if let stats = host.statistics(of: volume) {
            var bytes = Csi_V1_VolumeUsage()
            bytes.unit = .bytes
            bytes.total = Int64(stats.totalBytes)
            bytes.used = Int64(stats.usedBytes)
            bytes.available = Int64(stats.availableBytes)
            var inodes = Csi_V1_VolumeUsage()
            inodes.unit = .inodes
            inodes.total = Int64(stats.totalInodes)
            inodes.used = Int64(stats.usedInodes)
            inodes.available = Int64(stats.availableInodes)
            response.usage = [bytes, inodes]
        }
        return response
    }

    // MARK: - NodeExpandVolume

    /// Applies an expanded capacity to the volume's mounted file systems (their quota) and to
    /// the node's records, so a restart mounts it with the new quota. Nothing is resized on
    /// disk: the store is shared memory.
    public func nodeExpandVolume(_ request: Csi_V1_NodeExpandVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeExpandVolumeResponse
    {
        try Self.requireVolumeID(request.volumeID)
        guard !request.volumePath.isEmpty else { throw .missing("volume_path") }
        if request.hasVolumeCapability {
            try VolumeCapabilityRules.requireWellFormed(request.volumeCapability, field: "volume_capability")
        }
        let capacity = try CapacityRequest(request.hasCapacityRange ? request.capacityRange : nil)
        let path = (try? Self.absolutePath(request.volumePath, field: "volume_path")) ?? request.volumePath
        let capacityBytes = try await locked { [self] state throws(RPCStatus) -> Int in
            let staged = state.staged[request.volumeID]
            let targets = state.published.values.filter { $0.volume.volumeID == request.volumeID }
            guard staged?.stagingPath == path || targets.contains(where: { $0.targetPath == path }) else {
                throw .notFound("volume \(request.volumeID) is not staged or published at \(path) on node \(configuration.nodeID)")
            }
            guard var volume = staged?.volume ?? targets.first?.volume else {
                throw .notFound("volume \(request.volumeID) is not known on node \(configuration.nodeID)")
            }
            let wanted = capacity.resolvedSize(defaultSize: volume.capacityBytes)
            guard wanted > volume.capacityBytes, volume.capacityBytes > 0 else { return volume.capacityBytes }
            _ = try capacityLedger?.recordExpansion(of: request.volumeID, to: wanted)
            volume.capacityBytes = wanted
            do {
                try host.resize(volume, capacityBytes: wanted)
                if var record = staged {
                    record.volume = volume
                    try stagedRecords.save(record)
                    state.staged[request.volumeID] = record
                }
                for var target in targets {
                    target.volume = volume
                    try publishedRecords.save(target)
                    state.published[target.key] = target
                }
            } catch {
                throw .internalError("cannot expand volume \(request.volumeID): \(error)")
            }
            return wanted
        }
        var response = Csi_V1_NodeExpandVolumeResponse()
        response.capacityBytes = Int64(capacityBytes)
        return response
    }

    // MARK: - Helpers

    /// Runs `body` under the node's lock on a dedicated thread: it mounts, unmounts and waits
    /// for file-system sessions, which must not hold a thread of the cooperative pool.
    private func locked<Value: Sendable>(
        _ body: @escaping @Sendable (inout State) throws(RPCStatus) -> Value
    ) async throws(RPCStatus) -> Value {
        try await DedicatedThread.run(named: "csi node") { [self] () throws(RPCStatus) -> Value in
            try state.withLock { state throws(RPCStatus) -> Value in try body(&state) }
        }
    }

    private func descriptor(_ volumeID: String, context: [String: String], ephemeral: Bool) throws(RPCStatus)
        -> VolumeDescriptor
    {
        let cluster: ClusterReference
        switch (context[VolumeParameterKey.vineyardNamespace], context[VolumeParameterKey.vineyardName]) {
        case (let namespace?, let name?):
            cluster = ClusterReference(namespace: namespace, name: name)
            if let problem = cluster.validationProblem { throw .invalid("volume_context: \(problem)") }
        case (nil, nil):
            cluster = configuration.defaultCluster
        default:
            throw .invalid(
                "volume_context names only one of \(VolumeParameterKey.vineyardNamespace) and \(VolumeParameterKey.vineyardName)")
        }
        let capacity = context[VolumeParameterKey.capacity].flatMap { Int($0) } ?? 0
        // The controller's choice when it made one; otherwise this node's (recorded with the
        // volume, so a restart keeps it).
        let backend: VolumeBackend
        switch context[VolumeParameterKey.backend] {
        case nil: backend = configuration.backendSelection.choose(for: cluster)
        case let value?:
            guard let named = VolumeBackend(rawValue: value) else {
                throw .invalid("volume_context[\(VolumeParameterKey.backend)] \"\(value)\" is neither embedded nor vineyardd")
            }
            backend = named
        }
        return VolumeDescriptor(volumeID: volumeID, cluster: cluster, capacityBytes: capacity, ephemeral: ephemeral, backend: backend)
    }

    private func mountSession(_ volume: VolumeDescriptor, at path: String) throws(RPCStatus) {
        do {
            try host.mount(volume, at: path)
        } catch {
            switch error.kind {
            case .unavailable: throw RPCStatus(.failedPrecondition, error.message)
            case .resourceExhausted: throw RPCStatus(.resourceExhausted, error.message)
            case .failed: throw RPCStatus(.internalError, error.message)
            }
        }
    }

    private func remountSession(_ volume: VolumeDescriptor, at path: String) throws(RPCStatus) {
        detachStaleMount(at: path)
        try mountSession(volume, at: path)
    }

    private func unmountSession(at path: String) throws(RPCStatus) {
        do { try host.unmount(path: path) } catch { throw .internalError(error.message) }
    }

    /// Detaches whatever is mounted at `path` (a dead FUSE mount answers ENOTCONN to everything).
    private func detachStaleMount(at path: String) {
        while mounter.mount(at: path) != nil {
            if (try? mounter.unmount(path, lazy: true)) == nil { break }
        }
    }

    /// Checks `volume_id` is present and safe to use in a file name.
    static func requireVolumeID(_ volumeID: String) throws(RPCStatus) {
        guard !volumeID.isEmpty else { throw .missing("volume_id") }
        let allowed = volumeID.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
        guard allowed, !volumeID.hasPrefix("."), volumeID.utf8.count <= 128 else {
            throw .invalid("volume_id \"\(volumeID)\" must be 1-128 letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    static func absolutePath(_ path: String, field: String) throws(RPCStatus) -> String {
        guard path.hasPrefix("/") else { throw .invalid("\(field) \"\(path)\" is not an absolute path") }
        guard !path.utf8.contains(0) else { throw .invalid("\(field) contains a NUL byte") }
        return lexicallyNormalized(path)
    }

    /// `path` (absolute) without empty, `.` and `..` components, resolved by name only: symbolic
    /// links are the mounter's business, and `..` above the root stays at the root.
    static func lexicallyNormalized(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": _ = components.popLast()
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    private static func makeDirectory(_ path: String) throws(RPCStatus) {
        do {
            try FileIO.createDirectories(atPath: path)
        } catch {
            throw .internalError("cannot create \(path): \(error)")
        }
    }

    /// Removes an empty directory the CO asked us to use; a non-empty one is left alone.
    private static func removeDirectory(_ path: String) {
        _ = rmdir(path)
    }

    /// Whether `path` answers a stat (a FUSE mount whose server died answers ENOTCONN).
    private static func answers(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }
}

/// Kubernetes' marker for CSI ephemeral inline volumes.
enum EphemeralVolume {
    static let contextKey = "csi.storage.k8s.io/ephemeral"
}
