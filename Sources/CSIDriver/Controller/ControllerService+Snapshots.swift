import FoundationEssentials
import Glibc
public import CSIProto
public import GRPCTransport
import Logging
import Synchronization
import SwiftProtobuf

/// Snapshots and clones: trees of names that share the source's sealed objects (see
/// ``VolumeContentStore``). Taking one costs one store log record, whatever the data size.
extension ControllerService {
    /// A validated `volume_content_source`.
    struct ResolvedSource {
        var reference: ContentSource
        var cluster: ClusterReference
        var node: String?
        var capacityBytes: Int

        var description: String {
            switch reference {
            case .snapshot(let id): return "snapshot \(id)"
            case .volume(let id): return "volume \(id)"
            }
        }
    }

    // MARK: - CreateSnapshot / DeleteSnapshot / ListSnapshots / GetSnapshot

    public func createSnapshot(_ request: Csi_V1_CreateSnapshotRequest) async throws(RPCStatus)
        -> Csi_V1_CreateSnapshotResponse
    {
        let content = try requireContent("CreateSnapshot")
        guard !request.name.isEmpty else { throw .missing("name") }
        guard !request.sourceVolumeID.isEmpty else { throw .missing("source_volume_id") }
        let record = try state.withLock { state throws(RPCStatus) -> SnapshotRecord in
            if let existingID = state.snapshotIDsByName[request.name], let existing = state.snapshots[existingID] {
                guard existing.sourceVolumeID == request.sourceVolumeID else {
                    throw .alreadyExists(
                        "snapshot \"\(request.name)\" exists for volume \(existing.sourceVolumeID), not \(request.sourceVolumeID)")
                }
                return existing
            }
            guard let volume = state.volumes[request.sourceVolumeID] else {
                throw .notFound("volume \(request.sourceVolumeID) does not exist")
            }
            guard volume.backend != .vineyardd else {
                throw .failedPrecondition(
                    "volume \(volume.id) lives in the vineyardd of cluster \(volume.cluster); snapshots need the embedded backend")
            }
            let id = SnapshotRecord.newID()
            let size: Int
            do {
                size = try content.snapshot(volumeID: volume.id, as: id, cluster: volume.cluster)
            } catch {
                throw .internalError("cannot snapshot volume \(volume.id): \(error)")
            }
            let record = SnapshotRecord(
                id: id, name: request.name, sourceVolumeID: volume.id, cluster: volume.cluster, node: volume.node,
                sizeBytes: size, sourceCapacityBytes: volume.capacityBytes, createdAt: Date())
            do {
                try snapshotRecords.save(record)
            } catch {
                try? content.remove(treeOf: id, cluster: volume.cluster)
                logger.error("cannot persist snapshot", metadata: ["snapshot": "\(id)", "error": "\(error)"])
                throw .internalError("cannot persist snapshot \(id): \(error)")
            }
            state.snapshots[id] = record
            state.snapshotIDsByName[record.name] = id
            logger.info(
                "snapshot created",
                metadata: ["snapshot": "\(id)", "volume": "\(volume.id)", "bytes": "\(size)"])
            return record
        }
        var response = Csi_V1_CreateSnapshotResponse()
        response.snapshot = Self.csiSnapshot(record)
        return response
    }

    public func deleteSnapshot(_ request: Csi_V1_DeleteSnapshotRequest) async throws(RPCStatus)
        -> Csi_V1_DeleteSnapshotResponse
    {
        let content = try requireContent("DeleteSnapshot")
        guard !request.snapshotID.isEmpty else { throw .missing("snapshot_id") }
        try state.withLock { state throws(RPCStatus) in
            guard let record = state.snapshots[request.snapshotID] else { return }  // already gone: OK
            // Objects the source volume or a restored volume still names stay in the store.
            do {
                try content.remove(treeOf: record.id, cluster: record.cluster)
            } catch {
                throw .internalError("cannot delete the objects of snapshot \(record.id): \(error)")
            }
            do {
                try snapshotRecords.remove(key: record.id)
            } catch {
                throw .internalError("cannot record deletion of snapshot \(record.id): \(error)")
            }
            state.snapshots[record.id] = nil
            state.snapshotIDsByName[record.name] = nil
        }
        return Csi_V1_DeleteSnapshotResponse()
    }

    public func listSnapshots(_ request: Csi_V1_ListSnapshotsRequest) async throws(RPCStatus)
        -> Csi_V1_ListSnapshotsResponse
    {
        _ = try requireContent("ListSnapshots")
        guard request.maxEntries >= 0 else { throw .invalid("max_entries must not be negative (got \(request.maxEntries))") }
        // Like ListVolumes: the token is the id of the first snapshot of the next page.
        if !request.startingToken.isEmpty && !SnapshotRecord.isWellFormedID(request.startingToken) {
            throw RPCStatus(.aborted, "starting_token \"\(request.startingToken)\" was not issued by this driver")
        }
        let all = state.withLock { state in
            state.snapshots.values
                .filter { request.snapshotID.isEmpty || $0.id == request.snapshotID }
                .filter { request.sourceVolumeID.isEmpty || $0.sourceVolumeID == request.sourceVolumeID }
                .sorted { $0.id < $1.id }
        }
        let start = request.startingToken.isEmpty ? 0 : (all.firstIndex { $0.id >= request.startingToken } ?? all.count)
        let pageSize = request.maxEntries == 0 ? all.count : Int(request.maxEntries)
        let end = min(all.count, start + pageSize)
        var response = Csi_V1_ListSnapshotsResponse()
        response.entries = all[start..<end].map { record in
            var entry = Csi_V1_ListSnapshotsResponse.Entry()
            entry.snapshot = Self.csiSnapshot(record)
            return entry
        }
        if end < all.count { response.nextToken = all[end].id }
        return response
    }

    public func getSnapshot(_ request: Csi_V1_GetSnapshotRequest) async throws(RPCStatus) -> Csi_V1_GetSnapshotResponse {
        _ = try requireContent("GetSnapshot")
        guard !request.snapshotID.isEmpty else { throw .missing("snapshot_id") }
        guard let record = state.withLock({ $0.snapshots[request.snapshotID] }) else {
            throw .notFound("snapshot \(request.snapshotID) does not exist")
        }
        var response = Csi_V1_GetSnapshotResponse()
        response.snapshot = Self.csiSnapshot(record)
        return response
    }

    // MARK: - ControllerExpandVolume

    /// Raises the volume's quota. The bytes are already there (the store is shared), so the
    /// change is a record; the node applies the new quota to mounted volumes at
    /// NodeExpandVolume. A smaller request leaves the volume as it is.
    public func controllerExpandVolume(_ request: Csi_V1_ControllerExpandVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerExpandVolumeResponse
    {
        guard !request.volumeID.isEmpty else { throw .missing("volume_id") }
        guard request.hasCapacityRange else { throw .missing("capacity_range") }
        if request.hasVolumeCapability {
            try VolumeCapabilityRules.requireWellFormed(request.volumeCapability, field: "volume_capability")
        }
        let capacity = try CapacityRequest(request.capacityRange)
        guard let record = try expand(volumeID: request.volumeID, to: capacity) else {
            throw .notFound("volume \(request.volumeID) does not exist")
        }
        var response = Csi_V1_ControllerExpandVolumeResponse()
        response.capacityBytes = Int64(record.capacityBytes)
        response.nodeExpansionRequired = true
        return response
    }

    /// Raises the recorded capacity of a volume to what `capacity` resolves to, if that fits
    /// its store; `nil` when there is no such volume. A smaller request changes nothing.
    func expand(volumeID: String, to capacity: CapacityRequest) throws(RPCStatus) -> VolumeRecord? {
        try state.withLock { state throws(RPCStatus) -> VolumeRecord? in
            guard var record = state.volumes[volumeID] else { return nil }
            let wanted = capacity.resolvedSize(defaultSize: record.capacityBytes)
            guard wanted > record.capacityBytes else { return record }
            guard wanted <= configuration.storeCapacity else {
                throw RPCStatus(
                    .outOfRange,
                    "capacity \(wanted) bytes exceeds the capacity of a vineyard store (\(configuration.storeCapacity) bytes)")
            }
            let others = state.volumes.values.reduce(0) { sum, other in
                other.id != record.id && other.cluster == record.cluster && other.node == record.node
                    ? sum + other.capacityBytes : sum
            }
            guard others + wanted <= configuration.storeCapacity else {
                throw RPCStatus(
                    .resourceExhausted,
                    "store of vineyard cluster \(record.cluster) has \(configuration.storeCapacity - others) bytes "
                        + "for volume \(record.id); \(wanted) requested")
            }
            record.capacityBytes = wanted
            try persist(record)
            state.volumes[record.id] = record
            return record
        }
    }

    // MARK: - Helpers

    /// Validates CreateVolume's `volume_content_source`; `nil` when there is none.
    func requestedSource(_ request: Csi_V1_CreateVolumeRequest) throws(RPCStatus) -> ResolvedSource? {
        guard request.hasVolumeContentSource else { return nil }
        guard content != nil else {
            throw .invalid(
                "volume_content_source needs the controller to run beside the store (--mode all); this one does not")
        }
        switch request.volumeContentSource.type {
        case .snapshot(let source)?:
            guard !source.snapshotID.isEmpty else { throw .missing("volume_content_source.snapshot.snapshot_id") }
            guard let snapshot = state.withLock({ $0.snapshots[source.snapshotID] }) else {
                throw .notFound("snapshot \(source.snapshotID) does not exist")
            }
            return ResolvedSource(
                reference: .snapshot(id: snapshot.id), cluster: snapshot.cluster, node: snapshot.node,
                capacityBytes: snapshot.sourceCapacityBytes)
        case .volume(let source)?:
            guard !source.volumeID.isEmpty else { throw .missing("volume_content_source.volume.volume_id") }
            guard let volume = volume(id: source.volumeID) else {
                throw .notFound("volume \(source.volumeID) does not exist")
            }
            return ResolvedSource(
                reference: .volume(id: volume.id), cluster: volume.cluster, node: volume.node,
                capacityBytes: volume.capacityBytes)
        case nil:
            throw .invalid("volume_content_source names neither a snapshot nor a volume")
        }
    }

    /// Starts `record`'s tree as a copy of the source's.
    func populate(_ record: VolumeRecord, from source: ResolvedSource) throws(RPCStatus) {
        guard let content else { throw .internalError("no store to populate volume \(record.id) from") }
        do {
            let bytes = try content.populate(volumeID: record.id, from: source.reference, cluster: record.cluster)
            logger.info(
                "volume populated", metadata: ["volume": "\(record.id)", "from": "\(source.description)", "bytes": "\(bytes)"])
        } catch {
            throw .internalError("cannot populate volume \(record.id) from the \(source.description): \(error)")
        }
    }

    private func requireContent(_ method: String) throws(RPCStatus) -> any VolumeContentStore {
        guard let content else {
            throw RPCStatus(
                .unimplemented, "\(method) needs the controller to run beside the store (--mode all); this one does not")
        }
        return content
    }

    static func csiSnapshot(_ record: SnapshotRecord) -> Csi_V1_Snapshot {
        var snapshot = Csi_V1_Snapshot()
        snapshot.snapshotID = record.id
        snapshot.sourceVolumeID = record.sourceVolumeID
        snapshot.sizeBytes = Int64(record.sizeBytes)
        snapshot.creationTime = Google_Protobuf_Timestamp(date: record.createdAt)
        snapshot.readyToUse = true
        return snapshot
    }
}
