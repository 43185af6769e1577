//
// vineyard-csi: VolumeFS
//
// VineyarddFileSystem+Quota.swift: the volume's capacity enforced on vineyardd-backed files.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization
import VineyardIPC

/// The volume's quota. vineyardd accounts memory per instance, not per name, so the file system
/// counts the volume's bytes itself: the sizes of its named objects (counted from vineyardd when
/// mounted and at every `statfs`, so names written elsewhere are included), plus what open
/// writers have added beyond the version they started from. A write, truncation or creation that
/// would take the volume past its capacity fails with `ENOSPC`. The capacity is the volume's
/// (recorded by the node plugin, so a restarted plugin enforces it again); expansion raises it.
extension VineyarddFileSystem {
    /// What a writer holds beyond its named version's size.
    private func reservation(_ file: RemoteOpenFile, size: Int) -> Int {
        max(0, size - file.quotaBase)
    }

    /// Claims room for `bytes` more bytes of `file`, or `ENOSPC`.
    func quotaReserve(_ file: RemoteOpenFile, bytes: Int) throws(Errno) {
        let delta = reservation(file, size: file.size + bytes) - reservation(file, size: file.size)
        guard delta > 0 else { return }
        if state.capacity > 0 && state.usedBytes + state.reservedBytes + delta > state.capacity { throw .noSpace }
        state.reservedBytes += delta
    }

    /// Undoes ``quotaReserve(_:bytes:)`` when the growth did not happen.
    func quotaCancel(_ file: RemoteOpenFile, bytes: Int) {
        state.reservedBytes -= reservation(file, size: file.size + bytes) - reservation(file, size: file.size)
    }

    /// Gives back room as `file` loses `bytes` bytes.
    func quotaRelease(_ file: RemoteOpenFile, bytes: Int) {
        state.reservedBytes -= reservation(file, size: file.size) - reservation(file, size: file.size - bytes)
    }

    /// The writer's version is named: its size counts as the file's.
    func quotaPublished(_ file: RemoteOpenFile) {
        state.reservedBytes -= reservation(file, size: file.size)
        state.usedBytes = max(0, state.usedBytes + file.size - file.quotaBase)
        file.quotaBase = file.size
    }

    /// The writer goes without publishing what it holds.
    func quotaForget(_ file: RemoteOpenFile) {
        state.reservedBytes -= reservation(file, size: file.size)
        file.quotaBase = file.size
    }

    /// A named file of `bytes` bytes is gone.
    func quotaRemoved(_ bytes: Int) {
        state.usedBytes = max(0, state.usedBytes - bytes)
    }

    /// Counts the volume's named bytes in vineyardd again (names and sizes may change from
    /// other nodes and through the socket).
    func recountUsage() throws(Errno) {
        state.usedBytes = try Self.namedBytes(connection: connection, volumeID: volumeID)
    }

    /// The bytes of the volume's named objects in vineyardd.
    static func namedBytes(connection: VineyarddConnection, volumeID: String) throws(Errno) -> Int {
        do {
            return try VolumeFileSystem.namedContents(backend: VineyarddBackend(connection: connection), volumeID: volumeID).bytes
        } catch {
            throw error.errno
        }
    }

    /// The volume's capacity (0: none, vineyardd's memory is the limit).
    public var capacityBytes: Int { lock.withLock { _ in state.capacity } }

    /// Raises (or sets) the volume's capacity: expansion.
    public func resize(capacityBytes: Int) {
        lock.withLock { _ in state.capacity = capacityBytes }
    }
}
