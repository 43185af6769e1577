// vineyard-csi: VineyardSocket
// IPCError+StoreError.swift: the vineyard status of an embedded store's failure.

import SharedMemoryStore
import VineyardIPC

extension IPCError {
    /// The status code for a store failure (see ``StoreError/vineyardStatusCode``).
    init(_ error: StoreError) {
        self.init(IPCStatusCode(rawValue: error.vineyardStatusCode), error.description)
    }
}
