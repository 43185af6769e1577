// vineyard-csi: StoreBackend
// VineyarddConnection.swift: one vineyardd client that reconnects when vineyardd comes back.

import Synchronization
public import VineyardIPC

/// The connection of a volume's file system to its vineyardd, made again on demand.
///
/// Each successful connect starts a new ``generation``: what was mapped or written under an
/// older one belongs to a vineyardd that is gone (a restarted vineyardd has new shared
/// memory), so open files of an older generation fail with `EIO` rather than serve it.
public final class VineyarddConnection: Sendable {
    private struct State {
        var client: VineyardClient?
        var generation: UInt64 = 0
    }

    public let socketPath: String
    private let state = Mutex(State())
    /// Copies of other instances' objects vineyardd migrated here (VineyarddMigration.swift).
    public let migrated = MigratedCopies()

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    /// The connected client and its generation, connecting first if needed.
    ///
    /// - Throws: the failure's errno (`ENOTCONN` while vineyardd is unreachable).
    package func current() throws(BackendError) -> (client: VineyardClient, generation: UInt64) {
        let result: Result<(VineyardClient, UInt64), VineyardClientError> = state.withLock { state in
            if let client = state.client, client.isConnected { return .success((client, state.generation)) }
            state.client = nil
            do throws(VineyardClientError) {
                let client = try VineyardClient.connect(socketPath: socketPath)
                state.client = client
                state.generation += 1
                return .success((client, state.generation))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let pair): return pair
        case .failure(let error): throw BackendError(error)
        }
    }

    /// Runs `body` with the client; a vineyardd failure becomes its errno (`ENOTCONN`, `ENOSPC`,
    /// `ENOENT`, `EIO`).
    package func with<R>(_ body: (VineyardClient) throws(VineyardClientError) -> R) throws(BackendError) -> R {
        let (client, _) = try current()
        do {
            return try body(client)
        } catch {
            throw BackendError(error)
        }
    }

    /// Whether vineyardd answers now (connecting if needed): Probe's readiness.
    public var isReachable: Bool {
        guard let (client, _) = try? current() else { return false }
        return (try? client.instanceStatus()) != nil
    }

    /// Closes the connection (unmount).
    public func close() {
        state.withLock { state in
            state.client?.close()
            state.client = nil
        }
    }
}

extension VineyarddConnection {
    /// vineyardd's `instance_status` (memory limit and usage), connecting if needed.
    ///
    /// - Throws: the failure's errno (`ENOTCONN` while unreachable).
    public func status() throws(BackendError) -> JSONValue {
        try with { (client) throws(VineyardClientError) in try client.instanceStatus() }
    }
}

extension BackendError {
    /// A vineyardd failure, with its errno.
    init(_ error: VineyardClientError) {
        self.init(errno: error.errno, underlying: error)
    }
}
