//
// vineyard-csi: VolumeFS
//
// VineyarddConnection+Errno.swift: vineyardd calls as file system requests see them.

import FUSEKit
import StoreBackend
import VineyardIPC

extension VineyarddConnection {
    /// The connected client and its generation; a failure becomes its errno (`ENOTCONN` while
    /// vineyardd is unreachable).
    func currentClient() throws(Errno) -> (client: VineyardClient, generation: UInt64) {
        do {
            return try current()
        } catch {
            throw error.errno
        }
    }

    /// Runs `body` with the client; a vineyardd failure becomes its errno (`ENOTCONN`, `ENOSPC`,
    /// `ENOENT`, `EIO`).
    func call<R>(_ body: (VineyardClient) throws(VineyardClientError) -> R) throws(Errno) -> R {
        do {
            return try with(body)
        } catch {
            throw error.errno
        }
    }
}

extension VineyardFileError {
    /// The errno a file system returns: `EREMOTE` for bytes another instance holds and could
    /// not send, the client failure's own otherwise.
    var errno: Errno {
        switch self {
        case .client(let failure): return failure.errno
        case .remote: return .remote
        case .notAFile: return .io
        }
    }
}
